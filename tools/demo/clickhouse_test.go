package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseTSV(t *testing.T) {
	r, err := parseTSV("what\tevents\tnote\npage\t2316\ta\\tb\\\\c\\nd\nidentify\t174\t\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.Columns, "|") != "what|events|note" || len(r.Rows) != 2 || r.Rows[0][2] != "a\tb\\c\nd" || r.Rows[1][2] != "" {
		t.Errorf("%q", r)
	}
	if r, err := parseTSV("viewed\n"); err != nil || len(r.Rows) != 0 {
		t.Errorf("header only: %v %v", r, err)
	}
	for _, bad := range []string{"", "a\tb\n1\n"} {
		if _, err := parseTSV(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestFormatTable(t *testing.T) {
	got := formatTable(Result{Columns: []string{"utm_source", "people", "revenue"}, Rows: [][]string{{"(none)", "199", "9143.04"}, {"facebook", "30", "1403.4"}}})
	want := "" +
		"utm_source  people  revenue\n" +
		"──────────  ──────  ───────\n" +
		"(none)         199  9143.04\n" +
		"facebook        30   1403.4\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := formatTable(Result{Columns: []string{"n"}}); !strings.Contains(got, "(no rows)") {
		t.Errorf("empty: %q", got)
	}
}

func TestIsNumber(t *testing.T) {
	for s, want := range map[string]bool{"12": true, "-3.5": true, "0.25": true, "": false, "-": false, "1.2.3": false, "p_1": false, "1e5": false} {
		if isNumber(s) != want {
			t.Errorf("isNumber(%q) = %v", s, !want)
		}
	}
}

// The demo's SQL must run on ClickHouse 18.16 as well as current
// releases; make demo runs it against the real server, and this catches
// the known traps before that (see services/loader/COOKBOOK.md).
func TestQueriesAvoidOldClickHouseTraps(t *testing.T) {
	start := time.Unix(1796316260, 0)
	qs := queries("it's", start)
	if len(qs) < 4 || len(qs) > 6 {
		t.Errorf("%d queries, want 4-6", len(qs))
	}
	dateVsDateTime := regexp.MustCompile(`(timestamp|received_at|occurred_at|evaluated_at)\s*[<>=]+\s*(today|yesterday)\(`)
	for _, q := range append(qs, Query{"count", countQuery("it's", start)}) {
		for _, banned := range []string{"JSONExtract", "DateTime64", "Map(", "LowCardinality"} {
			if strings.Contains(q.SQL, banned) {
				t.Errorf("%s uses %s, which ClickHouse 18.16 lacks", q.Title, banned)
			}
		}
		if dateVsDateTime.MatchString(q.SQL) {
			t.Errorf("%s compares a DateTime with a Date", q.Title)
		}
		if !strings.Contains(q.SQL, `'it\'s'`) || !strings.Contains(q.SQL, "toDateTime(1796316260)") {
			t.Errorf("%s is not scoped to the workspace and the run:\n%s", q.Title, q.SQL)
		}
	}
}
