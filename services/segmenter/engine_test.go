package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/segstate"
)

func mustCompile(t *testing.T, defs ...string) []*segments.Segment {
	t.Helper()
	var out []*segments.Segment
	for _, d := range defs {
		s, err := segments.Compile([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestApply(t *testing.T) {
	segs := mustCompile(t,
		`{id: buyers, version: 1, name: B, condition: 'orders >= 2', aggregates: {orders: {count: {event: "Order Completed"}}}}`,
		`{id: pro, version: 1, name: P, condition: 'has(traits.plan) && traits.plan == "pro"'}`,
		`{id: cart, version: 1, name: C, condition: 'gone', aggregates: {gone: {absence: {after: "Cart Added", missing: "Order Completed", within: 1h}}}}`,
	)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	order := input{kind: inEvent, causeID: "c", at: now, event: segments.Event{Type: "track", Name: "Order Completed", Time: now}}
	cart := input{kind: inEvent, causeID: "c", at: now, event: segments.Event{Type: "track", Name: "Cart Added", Time: now}}
	pro := segments.Profile{ID: "p", Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}}
	free := segments.Profile{ID: "p", Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"free"`)}}
	tests := []struct {
		name   string
		prof   segments.Profile
		inputs []input
		at     time.Time
		want   string
	}{
		{"one order is not enough", free, []input{order}, now, "[]"},
		{"two orders enter", free, []input{order, order}, now, "[buyers+]"},
		{"trait on first sight", pro, []input{order}, now, "[pro+]"},
		{"trait change", free, []input{{kind: inProfile, causeID: "c", at: now}}, now, "[]"},
		{"cart not yet abandoned", free, []input{cart}, now.Add(59 * time.Minute), "[]"},
		{"cart abandoned at the tick", free, []input{cart, {kind: inTick, causeID: "t", at: now.Add(time.Hour)}}, now.Add(time.Hour), "[cart+]"},
		{"cart bought", free, []input{cart, order, {kind: inTick, causeID: "t", at: now.Add(time.Hour)}}, now.Add(time.Hour), "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &evaluator{segs: segs}
			ev.reset()
			entries := segstate.NewProfile("p")
			var got []string
			for _, in := range tc.inputs {
				at := now // events are evaluated when they arrive, ticks when due
				if in.kind == inTick {
					at = tc.at
				}
				for _, tr := range ev.apply(entries, tc.prof, in, at) {
					d := "-"
					if tr.enter {
						d = "+"
					}
					got = append(got, tr.segment+d)
				}
			}
			if fmt.Sprint(got) != tc.want && !(tc.want == "[]" && got == nil) {
				t.Fatalf("transitions = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestMergeAndDeadline(t *testing.T) {
	segs := mustCompile(t,
		`{id: buyers, version: 1, name: B, condition: 'orders >= 2', aggregates: {orders: {count: {event: "Order Completed", within: 1d}}}}`)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	order := input{kind: inEvent, causeID: "c", at: now, event: segments.Event{Type: "track", Name: "Order Completed", Time: now}}
	ev := &evaluator{segs: segs}
	ev.reset()
	a, b := segstate.NewProfile("a"), segstate.NewProfile("b")
	ev.apply(a, segments.Profile{ID: "a"}, order, now)
	ev.apply(b, segments.Profile{ID: "b"}, order, now)
	b.Get("buyers").In = true // pretend b was in, to see it exit
	exits := mergeEntries(a, "b", b, input{causeID: "m", at: now})
	if len(exits) != 1 || exits[0].profile != "b" || exits[0].enter {
		t.Fatalf("merge exits = %+v", exits)
	}
	got := ev.apply(a, segments.Profile{ID: "a"}, input{kind: inMerge, causeID: "m", at: now}, now)
	if len(got) != 1 || !got[0].enter || got[0].profile != "a" {
		t.Fatalf("survivor after merge: %+v", got)
	}
	// The hour bucket of the orders leaves the 1-day window at 13:00 next day.
	if d, _ := nextDeadline(segs, a, now); !d.Equal(now.Add(25 * time.Hour)) {
		t.Fatalf("next deadline = %v", d)
	}
	if out := exitAll("a", a, input{causeID: "erase"}); len(out) != 1 || out[0].enter {
		t.Fatalf("exitAll = %+v", out)
	}
}
