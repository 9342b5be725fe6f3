package main

import (
	"strings"
	"testing"
	"time"
)

func TestVerdict(t *testing.T) {
	good := Outcome{Accepted: 4000, FirstTrigger: 300 * time.Millisecond, TriggerWithin: 15 * time.Second, InClickHouse: 4000, Counted: true}
	if err := verdict(good); err != nil {
		t.Errorf("a good run: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Outcome)
		want []string
	}{
		{"nothing accepted", func(o *Outcome) { o.Accepted, o.FirstErr = 0, "posting batch: 401 Unauthorized" }, []string{"accepted no event", "401"}},
		{"no trigger", func(o *Outcome) { o.FirstTrigger = 0 }, []string{"no segment trigger", "15s"}},
		{"late trigger", func(o *Outcome) { o.FirstTrigger = 20 * time.Second }, []string{"took 20s"}},
		{"empty clickhouse", func(o *Outcome) { o.InClickHouse = 0 }, []string{"ClickHouse holds none"}},
		{"clickhouse down", func(o *Outcome) { o.Counted, o.CountErr = false, "connection refused" }, []string{"could not count", "connection refused"}},
		{"everything", func(o *Outcome) { *o = Outcome{TriggerWithin: time.Second, Counted: true} }, []string{"accepted no event", "no segment trigger", "holds none"}},
	} {
		o := good
		tc.edit(&o)
		err := verdict(o)
		if err == nil {
			t.Errorf("%s: passed", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}
