// Package weir is weir's Go plugin SDK: a plugin is a function over a row.
//
// A plugin package registers itself in an init function:
//
//	func init() {
//		weir.Register(weir.Plugin{
//			Map: func(row *weir.Row) error {
//				if email, ok := row.String("email"); ok {
//					return row.Set("email", strings.ToLower(email))
//				}
//				return nil
//			},
//		})
//	}
//
// Nothing here imports the component bindings, so `go test` runs the plugin natively
// (see package weirtest); the glue weir's build generates adapts it to the
// `row-plugin` world of weir:plugin.
//
// Values a row holds: nil, bool, int64, uint64, float64, string, []byte and time.Time
// (timestamps, and dates at midnight UTC). numeric, json, uuid, arrays and the other
// PostgreSQL types arrive as their text form; a map may set a map or slice on such a
// column and it is sent as JSON text.
package weir

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// Plugin is what a plugin registers: exactly one of Map and Filter.
type Plugin struct {
	// Init is called once with the stage's config (optional).
	Init func(config Config) error
	// Prepare picks the columns a table's rows carry (optional; default all).
	Prepare func(table Table) (Plan, error)
	// Map changes a row in place.
	Map func(row *Row) error
	// Filter keeps the rows for which it returns true.
	Filter func(row *Row) (bool, error)
}

var registered *Plugin

// Register makes p the plugin. Call it once, from an init function.
func Register(p Plugin) {
	if (p.Map == nil) == (p.Filter == nil) {
		panic("weir.Register: set exactly one of Map and Filter")
	}
	registered = &p
}

var routingColumns = []string{"_topic", "_key", "_partition"}

// Config is the stage's config: parsed, and decodable into a struct.
type Config struct {
	// Raw is the config as JSON (`{}` when the stage has none).
	Raw json.RawMessage
	// Values is the config parsed into maps, slices, strings, float64s and bools.
	Values map[string]any
}

// Decode unmarshals the config into v (a pointer to a struct, usually).
func (c Config) Decode(v any) error {
	if err := json.Unmarshal(c.Raw, v); err != nil {
		return InvalidConfig("%v", err)
	}
	return nil
}

// Column is a column of a table's schema version.
type Column struct {
	Name string
	// PgType is PostgreSQL's type name (`int4`, `text`); empty for metadata columns.
	PgType   string
	Nullable bool
}

// Table is a table's schema version.
type Table struct {
	Schema  string
	Name    string
	Columns []Column
}

// Qualified is `schema.name`.
func (t Table) Qualified() string { return t.Schema + "." + t.Name }

// Has reports whether the table has a column of that name.
func (t Table) Has(name string) bool {
	return slices.ContainsFunc(t.Columns, func(c Column) bool { return c.Name == name })
}

// WithBefore lists the named columns and their old images (`_before.<name>`) the
// table has.
func (t Table) WithBefore(names ...string) []string {
	var out []string
	for _, name := range names {
		for _, candidate := range []string{name, "_before." + name} {
			if t.Has(candidate) {
				out = append(out, candidate)
			}
		}
	}
	return out
}

// Plan is what a plugin asks of a table.
type Plan struct {
	// Columns to read; nil reads every column.
	Columns []string
	// Skip passes the table's rows on unchanged without calling the plugin.
	Skip bool
	// Routing names the routing columns a Map sets with Row.Route (`_topic`,
	// `_key`, `_partition`). Each one declared becomes a column of the table's
	// batches (null where the map left it unset: the pipeline's rule applies).
	Routing []string
}

// Row holds the values of the columns the plan reads.
type Row struct {
	names   []string
	values  []any
	routing []string
	routes  []any
}

// Names lists the columns the row holds, in table order.
func (r *Row) Names() []string { return r.names }

// Get returns a column's value; ok is false when the row does not hold it.
func (r *Row) Get(name string) (value any, ok bool) {
	i := slices.Index(r.names, name)
	if i < 0 {
		return nil, false
	}
	return r.values[i], true
}

// String returns a text column's value; ok is false when it is absent, null or not text.
func (r *Row) String(name string) (text string, ok bool) {
	value, _ := r.Get(name)
	text, ok = value.(string)
	return text, ok
}

// Set changes a column the row holds.
func (r *Row) Set(name string, value any) error {
	i := slices.Index(r.names, name)
	if i < 0 {
		return InvalidInput("column %s was not read", name)
	}
	r.values[i] = value
	return nil
}

// Route sets a routing column declared in Plan.Routing (`_topic` a string, `_key`
// a string or []byte, `_partition` an int).
func (r *Row) Route(name string, value any) error {
	i := slices.Index(r.routing, name)
	if i < 0 {
		return Failed("routing column %s is not in the Plan's Routing", name)
	}
	r.routes[i] = value
	return nil
}

// Error is a failed call; weir applies the stage's `on_error` policy to it.
type Error struct {
	// Kind is `invalid-config`, `invalid-input` or `failed`.
	Kind    string
	Message string
}

func (e *Error) Error() string { return e.Kind + ": " + e.Message }

// InvalidConfig says the stage's config is unusable.
func InvalidConfig(format string, args ...any) error {
	return &Error{"invalid-config", fmt.Sprintf(format, args...)}
}

// InvalidInput says a table or row cannot be handled.
func InvalidInput(format string, args ...any) error {
	return &Error{"invalid-input", fmt.Sprintf(format, args...)}
}

// Failed is any other failure.
func Failed(format string, args ...any) error {
	return &Error{"failed", fmt.Sprintf(format, args...)}
}

// Level is a log message's severity.
type Level uint8

const (
	Trace Level = iota
	Debug
	Info
	Warn
	ErrorLevel
)

// LogSink receives log messages: weir's log inside weir, standard error under go test.
var LogSink = func(level Level, message string) {
	fmt.Fprintf(os.Stderr, "[%d] %s\n", level, message)
}

// Logf writes to weir's log (target `weir::plugin`, tagged with the stage).
func Logf(level Level, format string, args ...any) {
	LogSink(level, fmt.Sprintf(format, args...))
}

// --- the dispatch both the component glue and weirtest use ----------------------

// Prepared is a table as a plugin planned it.
type Prepared struct {
	Table   Table
	Names   []string
	Routing []string
	Wants   bool
}

func plugin() (*Plugin, error) {
	if registered == nil {
		return nil, Failed("no plugin registered: call weir.Register from an init function")
	}
	return registered, nil
}

// CallInit parses the config and runs Plugin.Init.
func CallInit(config string) error {
	p, err := plugin()
	if err != nil {
		return err
	}
	if config == "" {
		config = "{}"
	}
	parsed := Config{Raw: json.RawMessage(config)}
	if err := json.Unmarshal(parsed.Raw, &parsed.Values); err != nil {
		return InvalidConfig("config is not a JSON object: %v", err)
	}
	if p.Init == nil {
		return nil
	}
	if err := p.Init(parsed); err != nil {
		if _, typed := err.(*Error); typed {
			return err
		}
		return InvalidConfig("%v", err)
	}
	return nil
}

// CallPrepare runs Plugin.Prepare and orders the read columns as the table does.
func CallPrepare(table Table) (Prepared, error) {
	p, err := plugin()
	if err != nil {
		return Prepared{}, err
	}
	var plan Plan
	if p.Prepare != nil {
		if plan, err = p.Prepare(table); err != nil {
			return Prepared{}, err
		}
	}
	for _, name := range plan.Routing {
		if !slices.Contains(routingColumns, name) {
			return Prepared{}, Failed("routing column %q is not one of %v", name, routingColumns)
		}
	}
	if p.Filter != nil && len(plan.Routing) > 0 {
		return Prepared{}, Failed("only a Map sets routing columns")
	}
	out := Prepared{Table: table, Routing: plan.Routing, Wants: !plan.Skip}
	for _, name := range plan.Columns {
		if !table.Has(name) {
			return Prepared{}, InvalidInput("table %s has no column %s", table.Qualified(), name)
		}
	}
	for _, column := range table.Columns {
		if plan.Columns == nil || slices.Contains(plan.Columns, column.Name) {
			out.Names = append(out.Names, column.Name)
		}
	}
	if len(out.Names) == 0 {
		out.Wants = false
	}
	return out, nil
}

// CallRows runs the map or filter over rows of values in `prepared.Names` order. A
// map's rows are changed in place, with the routing values appended; a filter's
// answer is one flag per row.
func CallRows(prepared Prepared, rows [][]any) (selection []bool, err error) {
	p, err := plugin()
	if err != nil {
		return nil, err
	}
	row := Row{names: prepared.Names, routing: prepared.Routing}
	if p.Filter != nil {
		selection = make([]bool, len(rows))
		for i, values := range rows {
			row.values = values
			if selection[i], err = p.Filter(&row); err != nil {
				return nil, err
			}
		}
		return selection, nil
	}
	width := len(prepared.Names)
	for i, values := range rows {
		row.values = values[:width:width]
		row.routes = make([]any, len(prepared.Routing))
		if err := p.Map(&row); err != nil {
			return nil, err
		}
		rows[i] = append(row.values, row.routes...)
	}
	return nil, nil
}

// Unix epoch helpers for the glue: timestamps are microseconds, dates days.
var epoch = time.Unix(0, 0).UTC()

// TimeFromMicros converts a WIT timestamp.
func TimeFromMicros(micros int64) time.Time { return time.UnixMicro(micros).UTC() }

// TimeFromDays converts a WIT date.
func TimeFromDays(days int32) time.Time { return epoch.AddDate(0, 0, int(days)) }

// DaysFromTime converts to a WIT date (the day of t in UTC).
func DaysFromTime(t time.Time) int32 {
	return int32(t.UTC().Truncate(24*time.Hour).Sub(epoch) / (24 * time.Hour))
}
