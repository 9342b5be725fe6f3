package testinfra

import (
	"reflect"
	"strings"
	"testing"
)

func TestTSV(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]string
	}{
		{"", nil},
		{"1\tx\n", [][]string{{"1", "x"}}},
		{"1\ta\\tb\n2\tc\\\\d\\ne\n", [][]string{{"1", "a\tb"}, {"2", "c\\d\ne"}}},
		{"\t\n", [][]string{{"", ""}}},
		{`it\'s` + "\n", [][]string{{"it's"}}},
	} {
		if got := TSV(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TSV(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCurrentClickHouse runs statements in one session of the embedded
// current engine, and a bad statement is reported with the engine's words.
func TestCurrentClickHouse(t *testing.T) {
	ch := CurrentClickHouse(t)
	out := ch.Run(t,
		"CREATE DATABASE d",
		"CREATE TABLE d.t (id UInt32, s String, at DateTime('UTC')) ENGINE = ReplacingMergeTree ORDER BY id",
		"INSERT INTO d.t VALUES (1, 'a\\tb', '2026-01-01 10:00:00'), (1, 'newer', '2026-01-02 10:00:00')",
		"SELECT id, s, at FROM d.t FINAL",
		"SELECT toUInt8(substring(version(), 1, position(version(), '.') - 1)) >= 23",
	)
	if got := TSV(out[3]); !reflect.DeepEqual(got, [][]string{{"1", "newer", "2026-01-02 10:00:00"}}) {
		t.Errorf("FINAL = %q", got)
	}
	if out[4] != "1\n" {
		t.Errorf("not a current ClickHouse: %q", out[4])
	}
	_, _, err := ch.run([]string{"SELECT 1", "SELECT nosuchfunction(1)"}, 2)
	if err == nil || !strings.Contains(err.Error(), "statement 2") || !strings.Contains(err.Error(), "nosuchfunction") {
		t.Errorf("err = %v", err)
	}
	// Queries after the setup fail one by one.
	res, errs := ch.Query(t, []string{"CREATE TABLE n (x UInt8) ENGINE = Memory", "INSERT INTO n VALUES (7)"},
		[]string{"SELECT nosuchfunction(x) FROM n", "SELECT x FROM n"})
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "nosuchfunction") || errs[1] != nil || res[1] != "7\n" {
		t.Errorf("Query = %q, %v", res, errs)
	}
}
