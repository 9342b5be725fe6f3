package segments

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkObserveEvaluate10 folds one event into and evaluates 10 segments
// of mixed kinds for one profile, as the segmenter does per resolved event.
func BenchmarkObserveEvaluate10(b *testing.B) {
	var segs []*Segment
	srcs := []string{audioViews, abandonedCart}
	for _, src := range Templates() {
		srcs = append(srcs, string(src))
	}
	srcs = append(srcs,
		`{"id":"rev","version":1,"name":"R","condition":"rev >= 500.0","aggregates":{"rev":{"sum":{"event":"Order Completed","property":"revenue","within":"90d"}}}}`,
		`{"id":"cart1h","version":1,"name":"C","condition":"c >= 1 && traits.country in [\"CN\",\"DE\"]","aggregates":{"c":{"count":{"event":"Cart Added","within":"1h"}}}}`,
		`{"id":"pro","version":1,"name":"P","condition":"traits.plan == \"pro\" && identities.exists(i, i.startsWith(\"user_id:\"))"}`,
	)
	for _, src := range srcs {
		segs = append(segs, mustCompile(b, src))
	}
	if len(segs) != 10 {
		b.Fatalf("%d segments", len(segs))
	}
	states := make([]*State, len(segs))
	for i := range states {
		states[i] = &State{}
	}
	p := Profile{ID: "p", Traits: traits("plan", `"pro"`, "country", `"DE"`), Identities: []string{"user_id:1"}, FirstSeen: t0, LastSeen: t0}
	names := []string{"Product Viewed", "Cart Added", "Order Completed", "Page Viewed"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		e := Event{Type: "track", Name: names[i%len(names)], Time: at, Properties: []byte(`{"category":"audio","revenue":12.5}`)}
		for j, s := range segs {
			if s.Affected(e) {
				s.Observe(states[j], e)
			}
			if _, err := s.Evaluate(states[j], p, at); err != nil {
				b.Fatal(fmt.Errorf("%s: %w", s.ID, err))
			}
		}
	}
}
