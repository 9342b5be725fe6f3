package main

import (
	"fmt"
	"io"
	"math"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a service's /metrics: every sample of the
// counters and gauges, by metric name.
type Metrics map[string][]Sample

// Sample is one labelled value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// parseMetrics reads the Prometheus text format.
func parseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parsing metrics: %w", err)
	}
	out := Metrics{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var v float64
			switch {
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Untyped != nil:
				v = m.Untyped.GetValue()
			default:
				continue // histograms and summaries: not shown
			}
			if math.IsNaN(v) {
				continue
			}
			out[name] = append(out[name], Sample{Labels: labels(m.GetLabel()), Value: v})
		}
	}
	return out, nil
}

func labels(ps []*dto.LabelPair) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		out[p.GetName()] = p.GetValue()
	}
	return out
}

// Sum adds the samples of name whose labels include every pair of match
// (a match value of "!x" means any value but x).
func (m Metrics) Sum(name string, match ...string) float64 {
	total := 0.0
next:
	for _, s := range m[name] {
		for i := 0; i+1 < len(match); i += 2 {
			k, want := match[i], match[i+1]
			got := s.Labels[k]
			if len(want) > 0 && want[0] == '!' {
				if got == want[1:] {
					continue next
				}
			} else if got != want {
				continue next
			}
		}
		total += s.Value
	}
	return total
}

// Has reports whether the scrape has the metric at all.
func (m Metrics) Has(name string) bool { return len(m[name]) > 0 }

// Reading is what the view shows of one stage at one instant.
type Reading struct {
	// Processed counts what the stage has handled: events the collector
	// accepted, input messages a consumer stage committed.
	Processed float64
	// Lag is the consumer stage's lag in messages (HasLag false for the
	// collector, which consumes nothing).
	Lag    float64
	HasLag bool
	// Only some stages fill these.
	Rejected    float64 // collector: events refused
	NewProfiles float64 // stitcher
	Merges      float64 // stitcher
	Transitions float64 // segmenter
	TimersFired float64 // segmenter
	Rows        float64 // loader: rows inserted into ClickHouse
}

// read picks a stage's figures out of its scrape: the metric names are
// firstparty_<stage>_… (pkg/stage for every consumer stage).
func read(stage string, m Metrics) Reading {
	p := "firstparty_" + stage + "_"
	r := Reading{}
	if stage == "collector" {
		r.Processed = m.Sum(p+"events_total", "outcome", "accepted")
		r.Rejected = m.Sum(p+"events_total", "outcome", "!accepted")
		return r
	}
	r.Processed = m.Sum(p + "messages_committed_total")
	r.Lag, r.HasLag = m.Sum(p+"consumer_lag"), m.Has(p+"consumer_lag")
	switch stage {
	case "stitcher":
		r.NewProfiles = m.Sum(p+"events_total", "outcome", "new_profile")
		r.Merges = m.Sum(p + "merges_total")
	case "segmenter":
		r.Transitions = m.Sum(p + "transitions_total")
		r.TimersFired = m.Sum(p + "timers_fired_total")
	case "loader":
		r.Rows = m.Sum(p+"rows_total", "table", "events")
	}
	return r
}

// rate is the per-second increase of a counter between two readings; a
// counter that went down (the service restarted) counts from zero.
func rate(before, after float64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	d := after - before
	if d < 0 {
		d = after
	}
	return d / seconds
}
