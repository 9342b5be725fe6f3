package main

import (
	"strings"
	"testing"
)

// scrape texts as the services serve them (trimmed from a running stack).
const (
	collectorText = `# HELP firstparty_collector_events_total Events by outcome.
# TYPE firstparty_collector_events_total counter
firstparty_collector_events_total{outcome="accepted",reason="",source="demo/web"} 4000
firstparty_collector_events_total{outcome="rejected",reason="auth",source=""} 3
# TYPE firstparty_collector_request_duration_seconds histogram
firstparty_collector_request_duration_seconds_bucket{le="0.01"} 10
firstparty_collector_request_duration_seconds_bucket{le="+Inf"} 12
firstparty_collector_request_duration_seconds_sum 0.5
firstparty_collector_request_duration_seconds_count 12
`
	stitcherText = `# TYPE firstparty_stitcher_consumer_lag gauge
firstparty_stitcher_consumer_lag 17
# TYPE firstparty_stitcher_events_total counter
firstparty_stitcher_events_total{outcome="new_profile"} 344
firstparty_stitcher_events_total{outcome="resolved"} 3656
# TYPE firstparty_stitcher_merges_total counter
firstparty_stitcher_merges_total{workspace="demo"} 4
firstparty_stitcher_merges_total{workspace="other"} 1
# TYPE firstparty_stitcher_messages_committed_total counter
firstparty_stitcher_messages_committed_total 4000
`
	segmenterText = `# TYPE firstparty_segmenter_messages_committed_total counter
firstparty_segmenter_messages_committed_total 5034
# TYPE firstparty_segmenter_consumer_lag gauge
firstparty_segmenter_consumer_lag 0
# TYPE firstparty_segmenter_transitions_total counter
firstparty_segmenter_transitions_total{segment="lifecycle-active",transition="enter",workspace="demo"} 344
firstparty_segmenter_transitions_total{segment="pro-plan",transition="enter",workspace="demo"} 36
# TYPE firstparty_segmenter_timers_fired_total counter
firstparty_segmenter_timers_fired_total 2
# TYPE firstparty_webhooks_consumer_lag gauge
firstparty_webhooks_consumer_lag 99
`
	loaderText = `# TYPE firstparty_loader_messages_committed_total counter
firstparty_loader_messages_committed_total 5696
# TYPE firstparty_loader_rows_total counter
firstparty_loader_rows_total{table="events"} 4000
firstparty_loader_rows_total{table="identities"} 700
`
)

func TestReadEachStage(t *testing.T) {
	for _, tc := range []struct {
		stage, text string
		want        Reading
	}{
		{"collector", collectorText, Reading{Processed: 4000, Rejected: 3}},
		{"stitcher", stitcherText, Reading{Processed: 4000, Lag: 17, HasLag: true, NewProfiles: 344, Merges: 5}},
		// The webhooks stage shares the segmenter's endpoint; its lag is not the segmenter's.
		{"segmenter", segmenterText, Reading{Processed: 5034, HasLag: true, Transitions: 380, TimersFired: 2}},
		{"loader", loaderText, Reading{Processed: 5696, HasLag: false, Rows: 4000}},
		{"validator", "", Reading{}},
	} {
		m, err := parseMetrics(strings.NewReader(tc.text))
		if err != nil {
			t.Fatalf("%s: %v", tc.stage, err)
		}
		if got := read(tc.stage, m); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.stage, got, tc.want)
		}
	}
}

func TestSumMatchesLabels(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(collectorText + stitcherText))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"firstparty_collector_events_total", nil, 4003},
		{"firstparty_collector_events_total", []string{"outcome", "accepted"}, 4000},
		{"firstparty_collector_events_total", []string{"outcome", "!accepted"}, 3},
		{"firstparty_collector_events_total", []string{"outcome", "accepted", "source", "demo/web"}, 4000},
		{"firstparty_collector_events_total", []string{"source", "nope"}, 0},
		{"firstparty_stitcher_merges_total", []string{"workspace", "demo"}, 4},
		{"no_such_metric", nil, 0},
		{"firstparty_collector_request_duration_seconds", nil, 0}, // histograms are not summed
	} {
		if got := m.Sum(tc.name, tc.match...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
}

func TestParseMetricsRejectsGarbage(t *testing.T) {
	if _, err := parseMetrics(strings.NewReader("firstparty_x{outcome=\"a\" 1\n")); err == nil || !strings.Contains(err.Error(), "parsing metrics") {
		t.Errorf("got %v, want a parsing error", err)
	}
}

func TestRate(t *testing.T) {
	for _, tc := range []struct{ before, after, secs, want float64 }{
		{100, 300, 2, 100},
		{100, 100, 1, 0},
		{500, 40, 2, 20}, // restarted: counts from zero
		{0, 10, 0, 0},
	} {
		if got := rate(tc.before, tc.after, tc.secs); got != tc.want {
			t.Errorf("rate(%v, %v, %v) = %v, want %v", tc.before, tc.after, tc.secs, got, tc.want)
		}
	}
}

// FuzzParseMetrics: whatever a /metrics endpoint answers, parsing and
// reading it returns an error or a reading, never a panic.
func FuzzParseMetrics(f *testing.F) {
	for _, s := range []string{collectorText, stitcherText, segmenterText, loaderText, "", "# TYPE x counter\nx NaN\n", "x{a=\"\\\"\"} +Inf 123\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMetrics(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, stage := range []string{"collector", "validator", "stitcher", "segmenter", "loader"} {
			_ = read(stage, m)
		}
	})
}
