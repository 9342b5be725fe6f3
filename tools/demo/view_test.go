package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/firstparty/firstparty/tools/clickstream"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sampleFrame() Frame {
	return Frame{
		Elapsed: 21 * time.Second, Duration: 60 * time.Second, Phase: "sending",
		Sent:     Sent{Accepted: 4000, Failed: 20, FirstErr: "posting batch: 503 Service Unavailable: kafka did not acknowledge", Shop: clickstream.Stats{SignUps: 170, Logins: 4, Orders: 95, Refunds: 2, Quiet: 45}},
		SendRate: 199.6,
		Stages: []StageView{
			{Name: "collector", Rate: 200, Total: 4000},
			{Name: "validator", Rate: 199.5, Total: 3990, Lag: 10, HasLag: true},
			{Name: "stitcher", Err: "reading metrics: connection refused"},
		},
		NewProfiles: 344, Merges: 4,
		Triggers: TriggerSummary{Total: 1203, Timers: 1, First: 250 * time.Millisecond,
			BySegment: map[string]SegmentCount{"lifecycle-active": {Enter: 344, Exit: 4}, "multi-device": {Enter: 4}, "cart-left-1m": {Enter: 1}},
			Recent: []Trigger{
				{Segment: "lifecycle-active", Enter: true, Profile: "p_1", After: 19800 * time.Millisecond, Latency: 177 * time.Millisecond},
				{Segment: "cart-left-1m", Enter: true, Profile: "p_2", After: 20100 * time.Millisecond, Timer: true},
				{Segment: "lifecycle-active", Profile: "p_3", After: 20900 * time.Millisecond, Latency: 12 * time.Millisecond},
			}},
	}
}

func TestRenderGolden(t *testing.T) {
	got := render(sampleFrame(), Layout{})
	path := filepath.Join("testdata", "frame.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("render changed (go test -update if intended):\n%s", got)
	}
}

func TestRenderShowsNewestTriggerFirst(t *testing.T) {
	f := sampleFrame()
	for i := 0; i < 20; i++ {
		f.Triggers.Recent = append(f.Triggers.Recent, Trigger{Segment: "s", Enter: true, Profile: "p_new", After: time.Duration(30+i) * time.Second})
	}
	out := render(f, Layout{})
	if n := strings.Count(out, "p_new"); n != latestShown {
		t.Errorf("%d of the latest triggers shown, want %d", n, latestShown)
	}
	if i, j := strings.Index(out, "+49.0s"), strings.Index(out, "+48.0s"); i < 0 || j < i {
		t.Errorf("newest trigger not first:\n%s", out)
	}
	f.Triggers = TriggerSummary{}
	if out := render(f, Layout{}); !strings.Contains(out, "none yet") {
		t.Errorf("no triggers yet:\n%s", out)
	}
}

// A frame fits the terminal, or the in-place redraw breaks: no line
// wider than it, no more lines than its height.
func TestRenderFitsTheTerminal(t *testing.T) {
	f := sampleFrame()
	for i := 0; i < 20; i++ {
		f.Triggers.Recent = append(f.Triggers.Recent, Trigger{Segment: "lifecycle-first-purchase", Enter: true, Profile: "p_01a23cce-e538-7b8c-b257-961529ca4b4d", After: time.Duration(30+i) * time.Second})
	}
	for _, l := range []Layout{{80, 24}, {60, 10}, {200, 60}, {20, 3}} {
		out := render(f, l)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) >= l.Height {
			t.Errorf("%v: %d lines", l, len(lines))
		}
		for _, line := range lines {
			if n := utf8.RuneCountInString(line); n >= l.Width {
				t.Errorf("%v: a line of %d characters: %q", l, n, line)
			}
		}
	}
	if out := render(f, Layout{Width: 200, Height: 60}); strings.Count(out, "p_01a23cce") != latestShown {
		t.Errorf("a tall terminal shows %d latest triggers, want %d", strings.Count(out, "p_01a23cce"), latestShown)
	}
}

func TestStatusLine(t *testing.T) {
	got := statusLine(sampleFrame())
	for _, want := range []string{"demo 21s sending", "accepted 4,000 (200/s)", "20 failed", "validator 200/s lag 10", "stitcher ?", "profiles 344, merged 4", "triggers 1,203", "latest lifecycle-active exit at +20.9s"} {
		if !strings.Contains(got, want) {
			t.Errorf("status line lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "\n") {
		t.Errorf("status line spans lines: %q", got)
	}
}

func TestRedraw(t *testing.T) {
	if got := redraw(0, "a\nb\n"); got != "a\nb\n" {
		t.Errorf("first frame: %q", got)
	}
	if got := redraw(2, "c\n"); got != "\x1b[2F\x1b[Jc\n" {
		t.Errorf("next frame: %q", got)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.4: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -4200: "-4,200", 199.5: "200"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
