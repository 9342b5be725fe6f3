package segments

import (
	"testing"
	"time"
)

func FuzzCompile(f *testing.F) {
	for _, src := range Templates() {
		f.Add(src)
	}
	for _, src := range []string{audioViews, abandonedCart,
		"id: s\nversion: 1\nname: S\ncondition: traits.plan == 'pro'\n",
		`{"id":"j","version":2,"name":"J","condition":"n >= 2","aggregates":{"n":{"sum":{"event":"E","property":"a.0.b","within":"30d"}}}}`,
		"id: s\nversion: 1\nname: S\ncondition: a\naggregates:\n  a: {inactive: {within: 90m, where: 'size(properties) > 2'}}\n",
	} {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Compile(src)
		if err != nil {
			return
		}
		// Whatever compiles must run without panicking.
		st := &State{}
		for _, e := range []Event{
			{Type: "track", Name: "Cart Added", Time: t0, Properties: []byte(`{"category":"audio","revenue":10}`)},
			{Type: "track", Name: "Order Completed", Time: t0.Add(time.Minute), Properties: []byte(`{"revenue":"5"}`)},
			{Type: "page", Name: "Home", Time: t0.Add(-time.Hour)},
		} {
			s.Affected(e)
			s.Observe(st, e)
		}
		_, _ = s.Evaluate(st, Profile{Traits: traits("plan", `"pro"`)}, t0.Add(time.Hour))
		s.NextDeadline(st, t0)
		MergeStates(st, st)
	})
}
