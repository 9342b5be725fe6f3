package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/testinfra"
)

// TestQueriesOnCurrentClickHouse runs the demo's SQL on a current
// ClickHouse engine (chDB) over the loader's schema — the golden copy the
// loader's own tests keep in step with its migrations — and a few rows.
// make demo runs the same SQL on Debian's 18.16.
func TestQueriesOnCurrentClickHouse(t *testing.T) {
	current := testinfra.CurrentClickHouse(t)
	ddl, err := os.ReadFile(filepath.Join("..", "..", "services", "loader", "testdata", "schema_single.sql"))
	if err != nil {
		t.Fatalf("reading the loader's schema: %v", err)
	}
	setup := []string{"CREATE DATABASE IF NOT EXISTS firstparty"}
	for _, stmt := range strings.Split(string(ddl), ";\n") {
		if strings.TrimSpace(stmt) != "" {
			setup = append(setup, stmt)
		}
	}
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	at := start.Add(10 * time.Second).UTC().Format(time.DateTime)
	setup = append(setup, "USE firstparty",
		`INSERT INTO events (workspace_id, source_id, message_id, type, event, anonymous_id, user_id, profile_id, timestamp, received_at, properties, context_campaign_source) VALUES
		('demo', 'web', 'm1', 'page', '', 'a1', '', 'p1', '`+at+`', '`+at+`', '{}', 'google'),
		('demo', 'web', 'm2', 'track', 'Product Viewed', 'a1', '', 'p1', '`+at+`', '`+at+`', '{"category":"Shoes"}', ''),
		('demo', 'web', 'm3', 'track', 'Product Added', 'a1', '', 'p1', '`+at+`', '`+at+`', '{}', ''),
		('demo', 'web', 'm4', 'identify', '', 'a2', 'u1', 'p2', '`+at+`', '`+at+`', '{}', ''),
		('demo', 'web', 'm5', 'track', 'Order Completed', 'a2', 'u1', 'p2', '`+at+`', '`+at+`', '{"revenue":100.5}', ''),
		('demo', 'web', 'm6', 'track', 'Order Refunded', 'a2', 'u1', 'p2', '`+at+`', '`+at+`', '{"revenue":20.25}', ''),
		('demo', 'web', 'm0', 'page', '', 'a9', '', 'p9', '`+at+`', '2020-01-01 00:00:00', '{}', '')`,
		`INSERT INTO segment_memberships (membership_id, workspace_id, segment_id, profile_id, transition, occurred_at, evaluated_at, version) VALUES
		('s1', 'demo', 'cart-left-1m', 'p1', 'enter', '`+at+`', '`+at+`', 1)`)
	qs := append(queries("demo", start), Query{"count", countQuery("demo", start)})
	sqls := make([]string, len(qs))
	for i, q := range qs {
		sqls[i] = q.SQL + "\nFORMAT TabSeparatedWithNames"
	}
	out, errs := current.Query(t, setup, sqls)
	results := map[string]Result{}
	for i, q := range qs {
		if errs[i] != nil {
			t.Errorf("%s: %v", q.Title, errs[i])
			continue
		}
		r, err := parseTSV(out[i])
		if err != nil {
			t.Errorf("%s: %v", q.Title, err)
		}
		results[q.Title] = r
	}
	if r := results["count"]; len(r.Rows) != 1 || r.Rows[0][0] != "6" {
		t.Errorf("count of the run's events: %v, want 6 (the one received before the start left out)", r.Rows)
	}
	if r := results["Revenue net of refunds"]; len(r.Rows) != 1 || strings.Join(r.Rows[0], " ") != "1 100.5 1 20.25 80.25" {
		t.Errorf("net revenue: %v", r.Rows)
	}
}
