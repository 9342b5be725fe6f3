package main

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadFixture(t *testing.T) Report {
	t.Helper()
	in, err := LoadInputs("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	r := Build(in)
	r.At = time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	return r
}

func stage(r Report, name string) Stage {
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	return Stage{}
}

func TestBuild(t *testing.T) {
	r := loadFixture(t)
	if len(r.Stages) != len(Services) {
		t.Fatalf("stages = %d, want one per service", len(r.Stages))
	}
	for _, tc := range []struct {
		name                  string
		alone, baseline, rat  float64
		rss                   float64
		unitHas, baselineTool string
	}{
		// The collector's best run (batches of 20) against the producer.
		{"collector", 53413, 83598, 53413.0 / 83598, 83, "batches of 20", "Kafka ProducerPerformance"},
		// The stitcher's ratio is the commands it drives, as measured.
		{"stitcher", 29000, 1040000, 0.29, 88, "events/s", "redis-benchmark -P 16"},
		{"loader", 45000, 270000, 45000.0 / 270000, 179, "rows/s", "clickhouse-client TSV, same rows"},
		// Not measured alone: only their memory.
		{"validator", 0, 0, 0, 87, "", ""},
		{"segmenter", 0, 0, 0, 100, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := stage(r, tc.name)
			if s.Alone != tc.alone || s.Baseline != tc.baseline || math.Abs(s.Ratio-tc.rat) > 1e-9 || s.PeakRSSMB != tc.rss {
				t.Errorf("got alone %v baseline %v ratio %v rss %v, want %v %v %v %v", s.Alone, s.Baseline, s.Ratio, s.PeakRSSMB, tc.alone, tc.baseline, tc.rat, tc.rss)
			}
			if !strings.Contains(s.Unit, tc.unitHas) || s.BaselineTool != tc.baselineTool {
				t.Errorf("unit %q tool %q, want unit with %q and tool %q", s.Unit, s.BaselineTool, tc.unitHas, tc.baselineTool)
			}
		})
	}
	if len(r.Steps) != 2 || r.Steps[0].Rate != 1000 || r.Steps[1].Rate != 2000 {
		t.Fatalf("steps not in rate order: %+v", r.Steps)
	}
	if got := r.Steps[1].Trigger; got.P99 != 605 || got.Missing != 10 {
		t.Errorf("2000/s trigger = %+v", got)
	}
}

func TestRender(t *testing.T) {
	r := loadFixture(t)
	var out bytes.Buffer
	Render(&out, r, nil)
	text := out.String()
	for _, want := range []string{
		"pipeline at 1,000 events/s", "pipeline at 2,000 events/s",
		"67 / 120", "190 / 605 (10 missing)", "909 / 1560",
		"53,413", "83,598", "1.04 M", "270,000", "kafka producer", "redis-benchmark", "clickhouse-client",
		"0.64", "0.29", "0.17",
		"50 active segments",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	// One table: every data line has the same number of columns, so the
	// stage columns line up under their headers.
	if strings.Contains(text, "Against the previous run") {
		t.Error("a comparison without a previous run")
	}
}

func TestChanges(t *testing.T) {
	now := loadFixture(t)
	then := loadFixture(t)
	then.At = now.At.Add(-time.Hour)
	then.Stages[0].Alone = 50000                         // collector was slower
	then.Steps[0].Trigger.P99 = 260                      // 1000/s trigger p99 was worse
	then.Steps = then.Steps[:1]                          // the previous run did not drive 2000/s
	then.Stages[4].Baseline, then.Stages[4].Alone = 0, 0 // nor measure the loader
	got := map[string]Change{}
	for _, c := range Changes(now, then) {
		got[c.What] = c
	}
	if c, ok := got["collector alone, events/s (batches of 20)"]; !ok || math.Abs(c.Percent()-6.826) > 0.01 {
		t.Errorf("collector change = %+v (%.3f%%)", c, c.Percent())
	}
	if c, ok := got["1,000 events/s: → trigger p99 ms"]; !ok || c.Percent() != -20 {
		t.Errorf("trigger change = %+v", c)
	}
	for what := range got {
		if strings.HasPrefix(what, "2,000") || strings.HasPrefix(what, "loader") {
			t.Errorf("compared %q, which the previous run did not measure", what)
		}
	}
	var out bytes.Buffer
	Render(&out, now, &then)
	if !strings.Contains(out.String(), "Against the previous run (2026-12-03 16:00 UTC)") || !strings.Contains(out.String(), "-20%") {
		t.Errorf("no comparison section:\n%s", out.String())
	}
}

func TestLoadInputs(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadInputs(dir); err == nil || !strings.Contains(err.Error(), "no benchmark results") {
		t.Errorf("empty dir: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "loader.json"), []byte(`{"rows_per_s": 10`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadInputs(dir); err == nil || !strings.Contains(err.Error(), "loader.json") {
		t.Errorf("broken file: err = %v, want one naming loader.json", err)
	}
	// One stage alone is a report of that stage.
	if err := os.WriteFile(filepath.Join(dir, "loader.json"), []byte(`{"rows_per_s": 10, "clickhouse_client_same_rows_per_s": 40}`), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := LoadInputs(dir)
	if err != nil || in.Loader == nil || in.Pipeline != nil {
		t.Fatalf("in = %+v, err = %v", in, err)
	}
	if s := stage(Build(in), "loader"); s.Ratio != 0.25 {
		t.Errorf("loader ratio = %v", s.Ratio)
	}
}

func TestChart(t *testing.T) {
	r := loadFixture(t)
	var buf bytes.Buffer
	if err := Chart(&buf, r); err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(&buf)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if cfg.Width != 18*96 || cfg.Height != 6*96 {
		t.Errorf("chart is %dx%d", cfg.Width, cfg.Height)
	}
	if err := Chart(&buf, Report{}); err == nil {
		t.Error("charted an empty report")
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {3.14, "3.1"}, {999, "999"}, {1000, "1,000"}, {53413.4, "53,413"}, {1040000, "1.04 M"}, {123456, "123,456"}} {
		if got := count(tc.v); got != tc.want {
			t.Errorf("count(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
