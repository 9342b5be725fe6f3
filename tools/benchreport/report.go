package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The inputs are the JSON files the stage benchmarks write under
// .local/bench/; only the fields the report reads are declared.

type collectorInput struct {
	Producer struct {
		RecordsPerSec float64 `json:"records_per_sec"`
		RecordBytes   float64 `json:"record_bytes"`
	} `json:"producer_baseline"`
	Runs []struct {
		Batch        int     `json:"batch"`
		EventsPerSec float64 `json:"events_per_sec"`
		PeakRSSMB    float64 `json:"peak_rss_mb"`
		Latency      struct {
			P50 float64 `json:"p50_ms"`
			P99 float64 `json:"p99_ms"`
		} `json:"latency"`
	} `json:"collector"`
}

type stitcherInput struct {
	EventsPerS       float64 `json:"events_per_s"`
	CommandsPerEvent float64 `json:"redis_commands_per_event"`
	RedisOpsPerS     float64 `json:"redis_benchmark_ops_per_s"`
	CommandsDriven   float64 `json:"commands_driven_vs_baseline"`
}

type loaderInput struct {
	RowsPerS       float64 `json:"rows_per_s"`
	ClientSame     float64 `json:"clickhouse_client_same_rows_per_s"`
	ClientNarrow   float64 `json:"clickhouse_client_narrow_rows_per_s"`
	RatioToClient  float64 `json:"ratio_to_client"`
	LoaderPeakMB   float64 `json:"loader_peak_mb"`
	RowsBenchmaked int     `json:"rows"`
}

type latencyInput struct {
	Count   int64   `json:"count"`
	Missing int64   `json:"missing"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
}

type pipelineInput struct {
	Segments   int                `json:"segments"`
	Partitions int                `json:"partitions"`
	PeakRSSMB  map[string]float64 `json:"peak_rss_mb"`
	Steps      []struct {
		TargetRate   int                `json:"target_rate"`
		AchievedRate float64            `json:"achieved_rate"`
		Resolved     latencyInput       `json:"collector_to_resolved"`
		Trigger      latencyInput       `json:"collector_to_trigger"`
		Row          latencyInput       `json:"collector_to_clickhouse_row"`
		Throughput   map[string]float64 `json:"throughput_per_s"`
		Evaluations  float64            `json:"segment_evaluations_per_s"`
	} `json:"steps"`
}

// Inputs are one run's stage results; a stage that was not run is nil.
type Inputs struct {
	Collector *collectorInput
	Stitcher  *stitcherInput
	Loader    *loaderInput
	Pipeline  *pipelineInput
}

// LoadInputs reads collector.json, stitcher.json, loader.json and
// pipeline.json from dir. A missing file leaves its stage out; a file
// that is there but unreadable is an error.
func LoadInputs(dir string) (Inputs, error) {
	var in Inputs
	read := func(name string, v any) (bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := json.Unmarshal(b, v); err != nil {
			return false, fmt.Errorf("reading %s: %w", name, err)
		}
		return true, nil
	}
	var c collectorInput
	var s stitcherInput
	var l loaderInput
	var p pipelineInput
	for _, f := range []struct {
		name string
		v    any
		set  func()
	}{
		{"collector.json", &c, func() { in.Collector = &c }},
		{"stitcher.json", &s, func() { in.Stitcher = &s }},
		{"loader.json", &l, func() { in.Loader = &l }},
		{"pipeline.json", &p, func() { in.Pipeline = &p }},
	} {
		ok, err := read(f.name, f.v)
		if err != nil {
			return in, err
		}
		if ok {
			f.set()
		}
	}
	if in.Collector == nil && in.Stitcher == nil && in.Loader == nil && in.Pipeline == nil {
		return in, fmt.Errorf("no benchmark results in %s (collector.json, stitcher.json, loader.json, pipeline.json)", dir)
	}
	return in, nil
}

// Services in pipeline order: the table's columns.
var Services = []string{"collector", "validator", "stitcher", "segmenter", "loader"}

// Report is one benchmark run, as printed, charted and kept as JSON.
type Report struct {
	At          time.Time `json:"at"`
	Commit      string    `json:"commit,omitempty"`
	Host        string    `json:"host,omitempty"`
	TookSeconds float64   `json:"took_s,omitempty"`
	Segments    int       `json:"segments,omitempty"`
	Partitions  int       `json:"partitions,omitempty"`
	Steps       []Step    `json:"steps"`
	Stages      []Stage   `json:"stages"`
}

// Step is the whole pipeline driven at one rate.
type Step struct {
	Rate        int                `json:"rate"`
	Achieved    float64            `json:"achieved"`
	Throughput  map[string]float64 `json:"throughput_per_s"`
	Resolved    Latency            `json:"to_resolved"`
	Trigger     Latency            `json:"to_trigger"`
	Row         Latency            `json:"to_row"`
	Evaluations float64            `json:"evaluations_per_s"`
}

// Latency of probes from the collector request, in ms; Missing probes
// never arrived within the benchmark's drain time.
type Latency struct {
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Count   int64   `json:"count"`
	Missing int64   `json:"missing"`
}

// Stage is one service measured alone against the server it leans on,
// and its peak memory in the pipeline run.
type Stage struct {
	Name string `json:"name"`
	// Alone is the stage's own ceiling (0: not measured alone), in Unit.
	Alone float64 `json:"alone,omitempty"`
	Unit  string  `json:"unit,omitempty"`
	// Baseline is the server's own tool in the same run.
	Baseline     float64 `json:"baseline,omitempty"`
	BaselineTool string  `json:"baseline_tool,omitempty"`
	BaselineUnit string  `json:"baseline_unit,omitempty"`
	// Ratio is Alone against Baseline in the terms RatioMeans gives.
	Ratio      float64 `json:"ratio,omitempty"`
	RatioMeans string  `json:"ratio_means,omitempty"`
	PeakRSSMB  float64 `json:"peak_rss_mb,omitempty"`
}

// Build turns one run's inputs into the report.
func Build(in Inputs) Report {
	var r Report
	stages := map[string]*Stage{}
	for _, s := range Services {
		stages[s] = &Stage{Name: s}
	}
	if c := in.Collector; c != nil {
		best := -1
		for i, run := range c.Runs {
			if best < 0 || run.EventsPerSec > c.Runs[best].EventsPerSec {
				best = i
			}
		}
		st := stages["collector"]
		if best >= 0 {
			run := c.Runs[best]
			st.Alone, st.Unit = run.EventsPerSec, fmt.Sprintf("events/s (batches of %d)", run.Batch)
		}
		st.Baseline, st.BaselineTool, st.BaselineUnit = c.Producer.RecordsPerSec, "Kafka ProducerPerformance", "records/s"
		st.Ratio, st.RatioMeans = ratio(st.Alone, st.Baseline), "events/s ÷ producer records/s"
	}
	if s := in.Stitcher; s != nil {
		st := stages["stitcher"]
		st.Alone, st.Unit = s.EventsPerS, "events/s"
		st.Baseline, st.BaselineTool, st.BaselineUnit = s.RedisOpsPerS, "redis-benchmark -P 16", "ops/s"
		st.Ratio, st.RatioMeans = s.CommandsDriven, fmt.Sprintf("Redis commands driven (%.1f per event) ÷ ops/s", s.CommandsPerEvent)
	}
	if l := in.Loader; l != nil {
		st := stages["loader"]
		st.Alone, st.Unit = l.RowsPerS, "rows/s"
		st.Baseline, st.BaselineTool, st.BaselineUnit = l.ClientSame, "clickhouse-client TSV, same rows", "rows/s"
		st.Ratio, st.RatioMeans = ratio(l.RowsPerS, l.ClientSame), "rows/s ÷ client rows/s"
	}
	if p := in.Pipeline; p != nil {
		r.Segments, r.Partitions = p.Segments, p.Partitions
		for _, s := range p.Steps {
			r.Steps = append(r.Steps, Step{
				Rate: s.TargetRate, Achieved: s.AchievedRate, Throughput: s.Throughput, Evaluations: s.Evaluations,
				Resolved: latency(s.Resolved), Trigger: latency(s.Trigger), Row: latency(s.Row),
			})
		}
		sort.Slice(r.Steps, func(i, j int) bool { return r.Steps[i].Rate < r.Steps[j].Rate })
		for name, mb := range p.PeakRSSMB {
			if st := stages[name]; st != nil {
				st.PeakRSSMB = mb
			}
		}
	}
	for _, s := range Services {
		r.Stages = append(r.Stages, *stages[s])
	}
	return r
}

func latency(l latencyInput) Latency {
	return Latency{P50: l.P50, P99: l.P99, Count: l.Count, Missing: l.Missing}
}

func ratio(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}

// Render prints the report as one table: a row per pipeline rate (each
// stage's throughput and the three end-to-end latencies), then each
// stage measured alone, the baseline of its server in the same run, their
// ratio and the stage's peak memory. With prev it adds how the headline
// figures moved since that run.
func Render(w io.Writer, r Report, prev *Report) {
	fmt.Fprintf(w, "Firstparty benchmark · %s", r.At.UTC().Format("2006-01-02 15:04 UTC"))
	for _, s := range []string{r.Commit, r.Host} {
		if s != "" {
			fmt.Fprintf(w, " · %s", s)
		}
	}
	if r.TookSeconds > 0 {
		fmt.Fprintf(w, " · took %s", (time.Duration(r.TookSeconds) * time.Second).String())
	}
	fmt.Fprintln(w)
	if r.Segments > 0 {
		fmt.Fprintf(w, "pipeline: every service, Kafka, Redis and ClickHouse on this one machine; %d active segments, %d partitions\n", r.Segments, r.Partitions)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"", "achieved"}
	units := []string{"", "events/s"}
	for _, s := range Services {
		head = append(head, s)
		units = append(units, "msg/s")
	}
	head = append(head, "→ resolved", "→ trigger", "→ ClickHouse row", "")
	units = append(units, "p50 / p99", "p50 / p99", "p50 / p99", "")
	row(tw, head...)
	row(tw, units...)
	for _, s := range r.Steps {
		cells := []string{fmt.Sprintf("pipeline at %s events/s", count(float64(s.Rate))), count(s.Achieved)}
		for _, svc := range Services {
			cells = append(cells, count(s.Throughput[svc]))
		}
		cells = append(cells, pair(s.Resolved), pair(s.Trigger), pair(s.Row), "")
		row(tw, cells...)
	}
	alone, base, tool, rat, rss := []string{"stage alone, max", ""}, []string{"server baseline, same run", ""},
		[]string{"  (baseline tool)", ""}, []string{"stage ÷ baseline", ""}, []string{"peak RSS MB (pipeline)", ""}
	for _, st := range r.Stages {
		alone = append(alone, orDash(count(st.Alone), st.Alone))
		base = append(base, orDash(count(st.Baseline), st.Baseline))
		tool = append(tool, orDash(shortTool(st.BaselineTool), st.Baseline))
		rat = append(rat, orDash(fmt.Sprintf("%.2f", st.Ratio), st.Ratio))
		rss = append(rss, orDash(fmt.Sprintf("%.0f", st.PeakRSSMB), st.PeakRSSMB))
	}
	for _, cells := range [][]string{alone, base, tool, rat, rss} {
		row(tw, append(cells, "", "", "", "")...)
	}
	tw.Flush()

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Latencies in ms from the moment the request is posted to the collector; \"missing\" probes never arrived within the drain.")
	fmt.Fprintln(w, "The loader's pipeline throughput counts every topic it loads (events, rejections, profile changes, memberships).")
	for _, st := range r.Stages {
		if st.Alone == 0 && st.Baseline == 0 {
			continue
		}
		fmt.Fprintf(w, "%s alone: %s %s; baseline %s: %s %s; ratio = %s\n", st.Name, count(st.Alone), st.Unit,
			st.BaselineTool, count(st.Baseline), st.BaselineUnit, st.RatioMeans)
	}
	if prev != nil {
		renderChanges(w, r, *prev)
	}
}

// Change is one headline figure against the previous run.
type Change struct {
	What      string
	Now, Then float64
}

// Percent is the change in percent (0 when there is nothing to compare).
func (c Change) Percent() float64 {
	if c.Then == 0 {
		return 0
	}
	return (c.Now - c.Then) / c.Then * 100
}

// Changes lists the headline figures both runs measured: every stage's
// ceiling and baseline, and per rate both runs drove, the trigger and
// ClickHouse-row p99.
func Changes(now, then Report) []Change {
	var out []Change
	prevStage := map[string]Stage{}
	for _, s := range then.Stages {
		prevStage[s.Name] = s
	}
	for _, s := range now.Stages {
		p := prevStage[s.Name]
		if s.Alone > 0 && p.Alone > 0 {
			out = append(out, Change{s.Name + " alone, " + s.Unit, s.Alone, p.Alone})
		}
		if s.Baseline > 0 && p.Baseline > 0 {
			out = append(out, Change{s.Name + " baseline (" + s.BaselineTool + ")", s.Baseline, p.Baseline})
		}
	}
	prevStep := map[int]Step{}
	for _, s := range then.Steps {
		prevStep[s.Rate] = s
	}
	for _, s := range now.Steps {
		p, ok := prevStep[s.Rate]
		if !ok {
			continue
		}
		rate := count(float64(s.Rate)) + " events/s"
		for _, c := range []Change{
			{rate + ": → resolved p99 ms", s.Resolved.P99, p.Resolved.P99},
			{rate + ": → trigger p99 ms", s.Trigger.P99, p.Trigger.P99},
			{rate + ": → ClickHouse row p99 ms", s.Row.P99, p.Row.P99},
		} {
			if c.Now > 0 && c.Then > 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

func renderChanges(w io.Writer, now, then Report) {
	changes := Changes(now, then)
	if len(changes) == 0 {
		return
	}
	fmt.Fprintf(w, "\nAgainst the previous run (%s):\n", then.At.UTC().Format("2006-01-02 15:04 UTC"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row(tw, "", "now", "then", "change")
	for _, c := range changes {
		row(tw, c.What, count(c.Now), count(c.Then), fmt.Sprintf("%+.0f%%", c.Percent()))
	}
	tw.Flush()
}

// row writes one tab-separated line; the first cell is left-aligned by
// padding it to the widest label.
func row(tw *tabwriter.Writer, cells ...string) {
	cells[0] = fmt.Sprintf("%-28s", cells[0])
	fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
}

// count formats a rate: thousands separated, 1.2 M above a million.
func count(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	}
	n := int64(math.Round(v))
	s := fmt.Sprintf("%d", n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// pair formats a latency as "p50 / p99" in ms, seconds past ten seconds,
// with the missing probes.
func pair(l Latency) string {
	if l.Count == 0 && l.Missing == 0 {
		return "–"
	}
	if l.Count == 0 {
		return fmt.Sprintf("none (%d missing)", l.Missing)
	}
	s := ms(l.P50) + " / " + ms(l.P99)
	if l.Missing > 0 {
		s += fmt.Sprintf(" (%d missing)", l.Missing)
	}
	return s
}

func ms(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func orDash(s string, v float64) string {
	if v == 0 {
		return "–"
	}
	return s
}

func shortTool(t string) string {
	switch {
	case strings.HasPrefix(t, "Kafka"):
		return "kafka producer"
	case strings.HasPrefix(t, "redis-benchmark"):
		return "redis-benchmark"
	case strings.HasPrefix(t, "clickhouse-client"):
		return "clickhouse-client"
	}
	return t
}
