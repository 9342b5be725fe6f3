package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/tools/clickstream"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"rates", func(c *Config) { c.rates = "1000,fast" }, `"fast"`},
		{"metrics", func(c *Config) { c.metrics = "collector" }, "service=http"},
		{"key", func(c *Config) { c.WriteKey = "" }, "-write-key"},
		{"batch", func(c *Config) { c.Batch = 0 }, "-batch"},
		{"cpu", func(c *Config) { c.cpu = "kafka=x" }, "-cpu"},
	} {
		c := Config{WriteKey: "k", rates: "1000, 5000", metrics: "collector=http://x/metrics", Batch: 10, Concurrency: 1, ProbeEvery: 20, ProbeDevices: 5, Duration: 1e9, Warmup: 1e9}
		tc.mod(&c)
		err := c.Validate()
		if tc.want == "" && (err != nil || len(c.Rates) != 2 || c.Rates[1] != 5000 || c.Metrics["collector"] != "http://x/metrics") ||
			tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate = %v (rates %v)", tc.name, err, c.Rates)
		}
	}
}

// TestRequestMixesProbes: every probe-every'th event is a toggle with a
// registered message id, and the body is a valid Segment batch.
func TestRequestMixesProbes(t *testing.T) {
	b := &bench{cfg: Config{Batch: 10, ProbeEvery: 4, ProbeDevices: 3}, runID: "r", probes: map[string]*probe{}}
	body, ids := b.request(nil, clickstream.New(1, 10), 0)
	var doc struct {
		Batch []map[string]any `json:"batch"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Batch) != 10 {
		t.Fatalf("body %s: %v", body, err)
	}
	toggles := 0
	for _, ev := range doc.Batch {
		if ev["event"] == ToggleEvent {
			toggles++
			if b.probes[ev["messageId"].(string)] == nil {
				t.Fatalf("probe %v not registered", ev["messageId"])
			}
		}
	}
	if toggles != 2 || len(ids) != 2 {
		t.Fatalf("%d toggles, %d ids; want 2 of 10 at one in four", toggles, len(ids))
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`# HELP x
firstparty_segmenter_messages_committed_total 120
firstparty_segmenter_evaluations_total 4000
firstparty_segmenter_transitions_total{workspace="w",segment="s",transition="enter"} 7
firstparty_segmenter_transitions_total{workspace="w",segment="s",transition="exit"} 3
firstparty_collector_events_total{source="w/web",outcome="accepted",reason=""} 99
`))
	}))
	defer srv.Close()
	c := scrape(context.Background(), "segmenter", srv.URL)
	if c.processed != 120 || c.evaluations != 4000 || c.transitions != 10 {
		t.Fatalf("segmenter counters = %+v", c)
	}
	if c := scrape(context.Background(), "collector", srv.URL); c.processed != 99 {
		t.Fatalf("collector counters = %+v", c)
	}
}

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, utime 250, stime 50,
	// and children (a Redis rewrite) cutime 90, cstime 10.
	line := "4242 (java (x) y) S 1 2 3 0 -1 4194560 100 0 0 0 250 50 90 10 20 0 60 0 1000 1 1\n"
	got, err := parseStat(line)
	if err != nil || got != 4 {
		t.Errorf("parseStat = %v, %v; want 4 s", got, err)
	}
	if _, err := parseStat("garbage"); err == nil {
		t.Error("parseStat accepted a line without a command name")
	}
	if s, err := cpuSeconds(os.Getpid()); err != nil || s < 0 {
		t.Errorf("cpuSeconds(self) = %v, %v", s, err)
	}
}

// TestTimelineKeepsEachSecondsSlowest: a probe's latency lands in the
// second of the step it was sent in, each second keeps its slowest, and a
// redelivered copy counts once.
func TestTimelineKeepsEachSecondsSlowest(t *testing.T) {
	b := &bench{probes: map[string]*probe{}}
	s := newStep(100)
	b.steps = []*Step{s}
	sentAt := func(id string, d time.Duration) { b.probes[id] = &probe{step: 0, sent: s.start.Add(d)} }
	sentAt("a", 100*time.Millisecond)
	sentAt("b", 900*time.Millisecond)
	sentAt("c", 2500*time.Millisecond)
	b.record("a", triggerKind, s.start.Add(300*time.Millisecond))  // 200 ms, second 0
	b.record("b", triggerKind, s.start.Add(1000*time.Millisecond)) // 100 ms, second 0
	b.record("c", triggerKind, s.start.Add(3500*time.Millisecond)) // 1 s, second 2
	b.record("c", triggerKind, s.start.Add(9*time.Second))         // redelivered: ignored
	b.record("c", resolvedKind, s.start.Add(2600*time.Millisecond))
	b.record("unknown", triggerKind, s.start)
	got := s.timeline()
	want := []Second{{At: 0, TriggerMax: 200}, {At: 1}, {At: 2, TriggerMax: 1000, ResolvedMax: 100}}
	if len(got) != len(want) {
		t.Fatalf("timeline %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("second %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := s.hists[triggerKind].TotalCount(); n != 3 {
		t.Errorf("trigger histogram holds %d values, want 3", n)
	}
}
