package main

import (
	"testing"
	"time"
)

func TestTrackerRatesAndTotals(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tr := newTracker([]string{"collector", "stitcher"}, 3)
	// The stack already handled traffic before the demo started: totals
	// count from the first scrape.
	for i, n := range []float64{1000, 1200, 1400, 1800} {
		at := t0.Add(time.Duration(i) * time.Second)
		tr.observe("collector", at, Reading{Processed: n}, "")
		tr.observe("stitcher", at, Reading{Processed: n - 50, Lag: 50, HasLag: true, NewProfiles: 10 + float64(i), Merges: float64(i / 2)}, "")
	}
	v := tr.views()
	// Rate over the last 3 scrapes: (1800-1200)/2 s.
	if v[0].Name != "collector" || v[0].Rate != 300 || v[0].Total != 800 || v[0].HasLag {
		t.Errorf("collector: %+v", v[0])
	}
	if v[1].Lag != 50 || !v[1].HasLag || v[1].Total != 800 {
		t.Errorf("stitcher: %+v", v[1])
	}
	if got := tr.since("stitcher", func(r Reading) float64 { return r.NewProfiles }); got != 3 {
		t.Errorf("new profiles since start = %v, want 3", got)
	}
	if tr.drained() {
		t.Error("drained with a lag of 50")
	}
	tr.observe("stitcher", t0.Add(4*time.Second), Reading{Processed: 1800, HasLag: true}, "")
	if !tr.drained() {
		t.Error("not drained with every lag 0")
	}
	tr.observe("collector", t0.Add(5*time.Second), Reading{}, "connection refused")
	if tr.drained() {
		t.Error("drained while a stage does not answer")
	}
	if v := tr.views(); v[0].Err != "connection refused" || v[0].Total != 800 {
		t.Errorf("a failed scrape keeps the last figures and shows the error: %+v", v[0])
	}
}

func TestTrackerBeforeAnyScrape(t *testing.T) {
	tr := newTracker([]string{"loader"}, 4)
	if v := tr.views(); len(v) != 1 || v[0].Rate != 0 || v[0].Total != 0 {
		t.Errorf("%+v", v)
	}
	if tr.drained() {
		t.Error("drained before a scrape")
	}
}
