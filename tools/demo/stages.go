package main

import "time"

// StageView is one row of the view's stage table.
type StageView struct {
	Name string
	// Rate is per second over the last few seconds; Total is since the
	// demo started.
	Rate, Total float64
	Lag         float64
	HasLag      bool
	Err         string // the last scrape's error, if it failed
}

// tracker turns successive scrapes into rates: it keeps each stage's
// reading at the start and its last few readings.
type tracker struct {
	order   []string
	base    map[string]Reading
	history map[string][]stamped
	window  int
	last    map[string]Reading
	errs    map[string]string
}

type stamped struct {
	at time.Time
	r  Reading
}

// newTracker follows stages (in pipeline order); rates are averaged over
// the last window scrapes.
func newTracker(stages []string, window int) *tracker {
	return &tracker{order: stages, base: map[string]Reading{}, history: map[string][]stamped{},
		window: max(window, 2), last: map[string]Reading{}, errs: map[string]string{}}
}

// observe records one scrape of stage (err non-empty when it failed).
func (t *tracker) observe(stage string, at time.Time, r Reading, err string) {
	t.errs[stage] = err
	if err != "" {
		return
	}
	if _, ok := t.base[stage]; !ok {
		t.base[stage] = r
	}
	h := append(t.history[stage], stamped{at, r})
	if len(h) > t.window {
		h = h[len(h)-t.window:]
	}
	t.history[stage] = h
	t.last[stage] = r
}

// since is how much a counter of stage grew since the start.
func (t *tracker) since(stage string, field func(Reading) float64) float64 {
	last, ok := t.last[stage]
	if !ok {
		return 0
	}
	if d := field(last) - field(t.base[stage]); d > 0 {
		return d
	}
	return 0
}

func (t *tracker) views() []StageView {
	out := make([]StageView, 0, len(t.order))
	processed := func(r Reading) float64 { return r.Processed }
	for _, s := range t.order {
		v := StageView{Name: s, Err: t.errs[s], Total: t.since(s, processed)}
		if h := t.history[s]; len(h) >= 2 {
			first, last := h[0], h[len(h)-1]
			v.Rate = rate(first.r.Processed, last.r.Processed, last.at.Sub(first.at).Seconds())
		}
		if r, ok := t.last[s]; ok {
			v.Lag, v.HasLag = r.Lag, r.HasLag
		}
		out = append(out, v)
	}
	return out
}

// drained reports whether every consumer stage's last scrape showed no
// lag and every stage answered.
func (t *tracker) drained() bool {
	for _, s := range t.order {
		r, ok := t.last[s]
		if !ok || t.errs[s] != "" || (r.HasLag && r.Lag > 0) {
			return false
		}
	}
	return true
}
