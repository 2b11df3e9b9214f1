// Package weirtest runs a plugin's functions as weir would, for go test: init,
// prepare, then rows.
//
//	func TestLowercases(t *testing.T) {
//		out, err := weirtest.Run([]map[string]any{{"email": "A@B.ORG"}}, weirtest.Options{Config: `{}`})
//		...
//	}
package weirtest

import (
	"slices"
	"strings"

	weir "weir.dev/plugin"
)

// Options describe the sample table.
type Options struct {
	// Config is the stage's config as JSON (default `{}`).
	Config string
	// Table is `schema.table` (default `public.sample`).
	Table string
	// Columns declares the table (`"id int8"`, `"email text"`); default: the keys
	// of the rows, sorted.
	Columns []string
}

// Run returns the rows that pass, as maps of every column (and the routing columns
// a map set).
func Run(rows []map[string]any, options Options) ([]map[string]any, error) {
	if err := weir.CallInit(options.Config); err != nil {
		return nil, err
	}
	schema, name, found := strings.Cut(options.Table, ".")
	if !found {
		schema, name = "public", "sample"
	}
	table := weir.Table{Schema: schema, Name: name}
	if options.Columns != nil {
		for _, declared := range options.Columns {
			column, pgType, _ := strings.Cut(declared, " ")
			table.Columns = append(table.Columns, weir.Column{Name: column, PgType: pgType, Nullable: true})
		}
	} else {
		seen := map[string]bool{}
		var keys []string
		for _, row := range rows {
			for key := range row {
				if !seen[key] {
					seen[key] = true
					keys = append(keys, key)
				}
			}
		}
		slices.Sort(keys)
		for _, key := range keys {
			table.Columns = append(table.Columns, weir.Column{Name: key, Nullable: true})
		}
	}
	prepared, err := weir.CallPrepare(table)
	if err != nil {
		return nil, err
	}
	copyRow := func(row map[string]any) map[string]any {
		out := make(map[string]any, len(row))
		for k, v := range row {
			out[k] = v
		}
		return out
	}
	if !prepared.Wants {
		out := make([]map[string]any, 0, len(rows))
		for _, row := range rows {
			out = append(out, copyRow(row))
		}
		return out, nil
	}
	values := make([][]any, len(rows))
	for i, row := range rows {
		values[i] = make([]any, len(prepared.Names))
		for j, name := range prepared.Names {
			values[i][j] = row[name]
		}
	}
	selection, err := weir.CallRows(prepared, values)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for i, row := range rows {
		if selection != nil {
			if selection[i] {
				out = append(out, copyRow(row))
			}
			continue
		}
		merged := copyRow(row)
		for j, name := range prepared.Names {
			merged[name] = values[i][j]
		}
		for j, name := range prepared.Routing {
			if value := values[i][len(prepared.Names)+j]; value != nil {
				merged[name] = value
			}
		}
		out = append(out, merged)
	}
	return out, nil
}
