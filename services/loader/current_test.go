package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// TestCookbookOnCurrentClickHouse holds the schema and the SQL cookbook to
// a current ClickHouse as well as to Debian's 18.16: every migration is
// applied to a current engine (chDB, ClickHouse 26.x), the rows the loader
// wrote into 18.16 for the cookbook's shop are copied into it, and every
// query of COOKBOOK.md must give the same answers there.
func TestCookbookOnCurrentClickHouse(t *testing.T) {
	current := testinfra.CurrentClickHouse(t)
	_, cc := loadCookbook(t)
	httpURL := testinfra.ClickHouseHTTP(t)

	o := SchemaOptions{Database: "fp"}
	stmts := []string{"CREATE DATABASE fp", o.migrationsTable()}
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		s, err := m.Statements(o)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, s...)
	}
	for _, table := range []string{"events", "identities", "profile_changes", "segment_memberships", "rejected_events"} {
		values := exportValues(t, httpURL, cc, table)
		if values == "" {
			t.Fatalf("the loader wrote no %s rows for the cookbook", table)
		}
		stmts = append(stmts, "INSERT INTO fp."+table+" VALUES "+values)
	}
	stmts = append(stmts, "USE fp")
	recipes := readCookbook(t)
	queries := []string{"SELECT version()"}
	for _, r := range recipes {
		queries = append(queries, r.sql)
	}
	out, errs := current.Query(t, stmts, queries)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	t.Logf("current ClickHouse %s", strings.TrimSpace(out[0]))

	checks := cookbookAnswers()
	for i, r := range recipes {
		t.Run(r.title, func(t *testing.T) {
			want, ok := checks[r.title]
			if !ok {
				t.Fatalf("COOKBOOK.md has a query under %q that TestCookbook does not check", r.title)
			}
			if errs[i+1] != nil {
				t.Fatalf("%s\n%v", r.sql, errs[i+1])
			}
			if got := testinfra.TSV(out[i+1]); !matches(got, want) {
				t.Errorf("%s\non current ClickHouse got %q\nwant (as on 18.16)   %q", r.sql, got, want)
			}
		})
	}
}

// exportValues reads every row of a table as ClickHouse's Values text,
// the literal an INSERT … VALUES takes on any version.
func exportValues(t *testing.T, httpURL string, cc chclient.Config, table string) string {
	t.Helper()
	q := url.Values{"database": {cc.Database}, "query": {"SELECT * FROM " + table + " FORMAT Values"}}
	resp, err := http.Get(httpURL + "/?" + q.Encode())
	if err != nil {
		t.Fatalf("exporting %s: %v", table, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("exporting %s: %v %s", table, err, b)
	}
	return strings.TrimSpace(string(b))
}
