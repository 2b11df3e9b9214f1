// Package enrich is lookup-enrich: fills a column from a lookup table kept in the
// stage's config, keyed by another column — a country name from its code, a region
// from a store id, a team from a product line — without a database round trip.
//
//	config:
//	  key: country_code        # the column to look up (text or an integer)
//	  target: country_name     # the column to fill
//	  lookup: { GB: United Kingdom, FR: France }
//	  default: Unknown         # when the key is not in the table (default: leave as is)
//	  overwrite: false         # replace a target that already holds a value (default true)
//	  route: false             # also send the row to the topic named by the value
//
// A null key leaves the row alone. With `route`, rows whose value was found go to
// the topic `<topic_prefix><value>`. Tables without both columns pass uncalled.
package enrich

import (
	"fmt"
	"strconv"

	weir "weir.dev/plugin"
)

type settings struct {
	Key         string            `json:"key"`
	Target      string            `json:"target"`
	Lookup      map[string]string `json:"lookup"`
	Default     *string           `json:"default"`
	Overwrite   *bool             `json:"overwrite"`
	Route       bool              `json:"route"`
	TopicPrefix string            `json:"topic_prefix"`
}

var config settings

func init() {
	weir.Register(weir.Plugin{
		Init:    configure,
		Prepare: prepare,
		Map:     enrich,
	})
}

func configure(c weir.Config) error {
	config = settings{}
	if err := c.Decode(&config); err != nil {
		return err
	}
	if config.Key == "" || config.Target == "" {
		return weir.InvalidConfig("key and target must name columns")
	}
	if config.Key == config.Target {
		return weir.InvalidConfig("key and target must be different columns")
	}
	if len(config.Lookup) == 0 {
		return weir.InvalidConfig("lookup must hold at least one entry")
	}
	if config.Overwrite == nil {
		overwrite := true
		config.Overwrite = &overwrite
	}
	weir.Logf(weir.Info, "lookup-enrich: %d entries, %s -> %s", len(config.Lookup), config.Key, config.Target)
	return nil
}

func prepare(table weir.Table) (weir.Plan, error) {
	if !table.Has(config.Key) || !table.Has(config.Target) {
		return weir.Plan{Skip: true}, nil
	}
	plan := weir.Plan{Columns: []string{config.Key, config.Target}}
	if config.Route {
		plan.Routing = []string{"_topic"}
	}
	return plan, nil
}

// keyText is how a key value is looked up: text as it is, integers in decimal.
func keyText(value any) (string, bool) {
	switch v := value.(type) {
	case string:
		return v, true
	case int64:
		return strconv.FormatInt(v, 10), true
	case uint64:
		return strconv.FormatUint(v, 10), true
	case nil:
		return "", false
	}
	return fmt.Sprint(value), true
}

func enrich(row *weir.Row) error {
	raw, _ := row.Get(config.Key)
	key, ok := keyText(raw)
	if !ok {
		return nil
	}
	if current, _ := row.Get(config.Target); current != nil && !*config.Overwrite {
		return nil
	}
	value, found := config.Lookup[key]
	if !found {
		if config.Default == nil {
			return nil
		}
		value = *config.Default
	}
	if err := row.Set(config.Target, value); err != nil {
		return err
	}
	if config.Route && found {
		return row.Route("_topic", config.TopicPrefix+value)
	}
	return nil
}
