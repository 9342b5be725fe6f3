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

// An event the stitcher marked as leaving the profile alone re-evaluates
// only the segments whose aggregates it moves and those over first or last
// seen; one that may have changed the profile re-evaluates those over
// traits and identities too.
func TestApplyProfileReads(t *testing.T) {
	segs := mustCompile(t,
		`{id: pro, version: 1, name: P, condition: 'has(traits.plan) && traits.plan == "pro"'}`,
		`{id: regular, version: 1, name: R, condition: 'last_seen - first_seen >= duration("1h")'}`,
		`{id: buyers, version: 1, name: B, condition: 'orders >= 1', aggregates: {orders: {count: {event: "Order Completed"}}}}`,
	)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	view := func(unchanged bool) input {
		return input{kind: inEvent, causeID: "c", at: now, profileUnchanged: unchanged, event: segments.Event{Type: "page", Time: now}}
	}
	order := input{kind: inEvent, causeID: "o", at: now, profileUnchanged: true, event: segments.Event{Type: "track", Name: "Order Completed", Time: now}}
	free := segments.Profile{ID: "p", FirstSeen: now, LastSeen: now, Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"free"`)}}
	pro := segments.Profile{ID: "p", FirstSeen: now, LastSeen: now.Add(2 * time.Hour), Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}}
	type step struct {
		prof      segments.Profile
		in        input
		want      string
		evaluated int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"unchanged profile: traits not read again, last seen is", []step{
			{free, view(false), "[]", 2}, // buyers: nothing observed, known without evaluating
			{pro, view(true), "[regular+]", 1},
		}},
		{"changed profile: traits read again", []step{
			{free, view(false), "[]", 2}, // buyers: nothing observed, known without evaluating
			{pro, view(false), "[pro+ regular+]", 2},
		}},
		{"an aggregate the event moves is evaluated either way", []step{
			{free, view(false), "[]", 2}, // buyers: nothing observed, known without evaluating
			{free, order, "[buyers+]", 2},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &evaluator{segs: segs}
			entries := segstate.NewProfile("p")
			for i, st := range tc.steps {
				ev.reset()
				before := ev.evaluations
				var got []string
				for _, tr := range ev.apply(entries, st.prof, st.in, now) {
					d := "-"
					if tr.enter {
						d = "+"
					}
					got = append(got, tr.segment+d)
				}
				if fmt.Sprint(got) != st.want && !(st.want == "[]" && got == nil) {
					t.Fatalf("step %d: transitions = %v, want %s", i, got, st.want)
				}
				if n := ev.evaluations - before; n != st.evaluated {
					t.Errorf("step %d: %d conditions evaluated, want %d", i, n, st.evaluated)
				}
			}
		})
	}
}

// Most profiles never match most segments: an event that moves nothing of
// a segment the profile has no entry for creates none.
func TestApplySkipsUntouchedSegments(t *testing.T) {
	segs := mustCompile(t,
		`{id: buyers, version: 1, name: B, condition: 'orders >= 1', aggregates: {orders: {count: {event: "Order Completed"}}}}`,
		`{id: newcomers, version: 1, name: N, condition: 'orders == 0', aggregates: {orders: {count: {event: "Order Completed"}}}}`,
	)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ev := &evaluator{segs: segs}
	ev.reset()
	p := segstate.NewProfile("p")
	trs := ev.apply(p, segments.Profile{ID: "p"}, input{kind: inEvent, causeID: "v", at: now, event: segments.Event{Type: "page", Time: now}}, now)
	if p.Decoded("buyers") {
		t.Error("a page view made an entry for a segment it cannot move")
	}
	// A segment an empty profile matches still gets its entry and enter.
	if !p.Decoded("newcomers") || len(trs) != 1 || trs[0].segment != "newcomers" || !trs[0].enter {
		t.Errorf("transitions = %+v, want newcomers entered", trs)
	}
}

// An entry made by an earlier version of a segment is decided anew at the
// profile's next event, even one that moves nothing of the segment and
// changed nothing of the profile: an edited audience loses (and gains) its
// members without waiting for its backfill.
func TestApplyRedecidesOtherVersions(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	prof := segments.Profile{ID: "p", Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"enterprise"`)}}
	v1 := mustCompile(t, `{id: paid, version: 1, name: P, condition: 'traits.plan in ["pro", "enterprise"]'}`)
	v2 := mustCompile(t, `{id: paid, version: 2, name: P, condition: 'traits.plan == "pro"'}`)
	p := segstate.NewProfile("p")
	ev := &evaluator{segs: v1}
	ev.reset()
	if trs := ev.apply(p, prof, input{kind: inEvent, causeID: "a", at: now, event: segments.Event{Type: "page", Time: now}}, now); len(trs) != 1 || !trs[0].enter {
		t.Fatalf("under v1: %+v, want an enter", trs)
	}
	view := input{kind: inEvent, causeID: "b", at: now, profileUnchanged: true, event: segments.Event{Type: "page", Time: now}}
	ev = &evaluator{segs: v1}
	ev.reset()
	if trs := ev.apply(p, prof, view, now); len(trs) != 0 || ev.evaluations != 0 {
		t.Fatalf("same version, nothing moved: %+v after %d evaluations, want none", trs, ev.evaluations)
	}
	ev = &evaluator{segs: v2}
	ev.reset()
	if trs := ev.apply(p, prof, view, now); len(trs) != 1 || trs[0].enter || trs[0].version != 2 {
		t.Fatalf("under v2: %+v, want an exit of version 2", trs)
	}
}

// A condition over traits and now is looked at again at every event, not
// only at its recheck timer: the trial ends at the first event after its
// date, though the event changed nothing of the profile.
func TestApplyProfileAndNow(t *testing.T) {
	segs := mustCompile(t, `{id: expired, version: 1, name: E, condition: 'has(traits.trial_end) && timestamp(string(traits.trial_end)) < now'}`)
	day := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	prof := segments.Profile{ID: "p", Traits: map[string]json.RawMessage{"trial_end": json.RawMessage(`"2026-11-02T00:00:00Z"`)}}
	p := segstate.NewProfile("p")
	ev := &evaluator{segs: segs}
	for i, tc := range []struct {
		at   time.Time
		want int
	}{{day, 0}, {day.Add(24 * time.Hour), 1}} {
		ev.reset()
		in := input{kind: inEvent, causeID: fmt.Sprint(i), at: tc.at, profileUnchanged: i > 0, event: segments.Event{Type: "page", Time: tc.at}}
		if trs := ev.apply(p, prof, in, tc.at); len(trs) != tc.want {
			t.Fatalf("event %d: %+v, want %d transitions", i, trs, tc.want)
		}
	}
}
