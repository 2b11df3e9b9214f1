package enrich

import (
	"errors"
	"testing"

	weir "weir.dev/plugin"
	"weir.dev/plugin/weirtest"
)

const countries = `{"key": "country_code", "target": "country_name", "lookup": {"GB": "United Kingdom", "FR": "France", "7": "Seven"}}`

func TestFillsTheTargetFromTheLookup(t *testing.T) {
	rows := []map[string]any{
		{"id": int64(1), "country_code": "GB", "country_name": nil},
		{"id": int64(2), "country_code": "XX", "country_name": nil},
		{"id": int64(3), "country_code": nil, "country_name": "kept"},
		{"id": int64(4), "country_code": int64(7), "country_name": nil},
	}
	out, err := weirtest.Run(rows, weirtest.Options{Config: countries})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"United Kingdom", nil, "kept", "Seven"}
	for i, row := range out {
		if row["country_name"] != want[i] {
			t.Errorf("row %d: country_name = %v, want %v", i, row["country_name"], want[i])
		}
		if _, routed := row["_topic"]; routed {
			t.Errorf("row %d routed without route: true", i)
		}
	}
}

func TestDefaultOverwriteAndRoute(t *testing.T) {
	config := `{"key": "country_code", "target": "country_name", "lookup": {"FR": "france"},
		"default": "unknown", "overwrite": false, "route": true, "topic_prefix": "orders."}`
	rows := []map[string]any{
		{"country_code": "FR", "country_name": nil},
		{"country_code": "DE", "country_name": nil},
		{"country_code": "FR", "country_name": "already"},
	}
	out, err := weirtest.Run(rows, weirtest.Options{Config: config})
	if err != nil {
		t.Fatal(err)
	}
	if out[0]["country_name"] != "france" || out[0]["_topic"] != "orders.france" {
		t.Errorf("found key: %v", out[0])
	}
	if out[1]["country_name"] != "unknown" || out[1]["_topic"] != nil {
		t.Errorf("default: %v", out[1])
	}
	if out[2]["country_name"] != "already" {
		t.Errorf("overwrite false: %v", out[2])
	}
}

func TestTablesWithoutTheColumnsPass(t *testing.T) {
	rows := []map[string]any{{"id": int64(1)}}
	out, err := weirtest.Run(rows, weirtest.Options{Config: countries, Columns: []string{"id int8"}})
	if err != nil || len(out) != 1 || out[0]["id"] != int64(1) {
		t.Fatalf("out = %v, err = %v", out, err)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	for _, config := range []string{
		`{"key": "a", "target": "a", "lookup": {"x": "y"}}`,
		`{"key": "a", "target": "b"}`,
		`{"key": "a", "target": "b", "lookup": "nope"}`,
		`[1]`,
	} {
		_, err := weirtest.Run(nil, weirtest.Options{Config: config})
		var typed *weir.Error
		if !errors.As(err, &typed) || typed.Kind != "invalid-config" {
			t.Errorf("config %s: err = %v, want invalid-config", config, err)
		}
	}
}
