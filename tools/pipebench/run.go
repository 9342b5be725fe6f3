package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
	"github.com/firstparty/firstparty/tools/clickstream"
	"github.com/firstparty/firstparty/tools/progress"
)

// ToggleEvent is the probe event's name; the benchmark workspace's toggle
// segment flips with each one.
const ToggleEvent = "Bench Toggle"

// Result is the whole run.
type Result struct {
	Started time.Time `json:"started"`
	Config  struct {
		Batch       int    `json:"batch"`
		Concurrency int    `json:"concurrency"`
		ProbeEvery  int    `json:"probe_every"`
		Duration    string `json:"duration"`
	} `json:"config"`
	Steps []Step `json:"steps"`
}

// Step is one rate.
type Step struct {
	TargetRate   int     `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	EventsSent   int64   `json:"events_sent"`
	FailedEvents int64   `json:"failed_events"`
	Probes       int64   `json:"probes"`
	Resolved     Latency `json:"collector_to_resolved"`
	Trigger      Latency `json:"collector_to_trigger"`
	Row          Latency `json:"collector_to_clickhouse_row"`
	// Throughput is messages per second each service handled during the
	// step (from its /metrics).
	Throughput map[string]float64 `json:"throughput_per_s,omitempty"`
	// CPU is the cores each named process used while the rate was
	// offered (CPU seconds over the step's wall time).
	CPU             map[string]float64 `json:"cpu_cores,omitempty"`
	EvaluationsPerS float64            `json:"segment_evaluations_per_s,omitempty"`
	TransitionsPerS float64            `json:"transitions_per_s,omitempty"`
	// NewProfileShare is the share of the events the stitcher resolved
	// during the step that created a profile (first sight of a device).
	NewProfileShare float64 `json:"new_profile_share"`
	ElapsedSeconds  float64 `json:"elapsed_s"`
	FirstError      string  `json:"first_error,omitempty"`
	// Timeline is, per second of the step, the slowest probe sent in it:
	// whether a p99 comes from a few stalls (a merge, a GC, a rebalance)
	// or from a queue that grows.
	Timeline []Second `json:"timeline,omitempty"`
	start    time.Time
	hists    [kinds]*hdrhistogram.Histogram
	worst    [kinds][]float64 // ms, by second of the step
}

// Second is the slowest probe of each kind sent in one second of a step
// (ms; 0 when none arrived).
type Second struct {
	At          int     `json:"s"`
	ResolvedMax float64 `json:"resolved_max_ms"`
	TriggerMax  float64 `json:"trigger_max_ms"`
	RowMax      float64 `json:"row_max_ms,omitempty"`
}

// What a probe's arrival is: resolved, its transition, its ClickHouse row.
const (
	resolvedKind = iota
	triggerKind
	rowKind
	kinds
)

func newStep(rate int) *Step {
	s := &Step{TargetRate: rate, start: time.Now()}
	for k := range s.hists {
		s.hists[k] = hdrhistogram.New(histMin, histMax, 3)
	}
	return s
}

// timeline turns the per-second worst cases into Seconds.
func (s *Step) timeline() []Second {
	n := 0
	for _, w := range s.worst {
		n = max(n, len(w))
	}
	out := make([]Second, n)
	at := func(k, i int) float64 {
		if i < len(s.worst[k]) {
			return s.worst[k][i]
		}
		return 0
	}
	for i := range out {
		out[i] = Second{At: i, ResolvedMax: at(resolvedKind, i), TriggerMax: at(triggerKind, i), RowMax: at(rowKind, i)}
	}
	return out
}

// Latency in milliseconds; Missing counts probes that never arrived
// within the drain time.
type Latency struct {
	Count   int64   `json:"count"`
	Missing int64   `json:"missing"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

const (
	histMin = 1
	histMax = int64(5 * time.Minute / time.Microsecond)
)

func summarize(h *hdrhistogram.Histogram, sent int64) Latency {
	l := Latency{Count: h.TotalCount(), Missing: sent - h.TotalCount()}
	if l.Count == 0 {
		return l
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	l.P50, l.P90, l.P99, l.Max = ms(h.ValueAtQuantile(50)), ms(h.ValueAtQuantile(90)), ms(h.ValueAtQuantile(99)), ms(h.Max())
	return l
}

// probe is one probe event in flight.
type probe struct {
	step    int // -1: warm-up, not counted
	sent    time.Time
	arrived [kinds]bool // by kind: resolved, triggered, loaded
}

type bench struct {
	cfg    Config
	runID  string
	mu     sync.Mutex
	probes map[string]*probe
	steps  []*Step
	seq    atomic.Int64
	client *http.Client
	auth   string
	// gens are the workers' shops, one per connection, made once: the
	// same population of devices browses through the warm-up and every
	// step, as a site's visitors do, instead of every step starting with
	// devices the pipeline has never seen (each of which creates a
	// profile, the stitcher's and segmenter's dearest path).
	gens []*clickstream.Clickstream
}

func (b *bench) record(id string, kind int, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.probes[id]
	if p == nil {
		return
	}
	flag := &p.arrived[kind]
	if *flag {
		return // a redelivered copy
	}
	*flag = true
	if p.step < 0 {
		return
	}
	s := b.steps[p.step]
	us := at.Sub(p.sent).Microseconds()
	us = max(histMin, min(us, histMax))
	_ = s.hists[kind].RecordValue(us)
	sec := max(0, int(p.sent.Sub(s.start)/time.Second))
	for len(s.worst[kind]) <= sec {
		s.worst[kind] = append(s.worst[kind], 0)
	}
	s.worst[kind][sec] = max(s.worst[kind][sec], float64(us)/1000)
}

func run(ctx context.Context, cfg Config) (*Result, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.Concurrency, MaxConnsPerHost: cfg.Concurrency, IdleConnTimeout: 90 * time.Second,
	}
	b := &bench{cfg: cfg, runID: strconv.FormatInt(time.Now().UnixNano(), 36), probes: map[string]*probe{},
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		auth:   "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.WriteKey+":"))}
	seed := uint64(time.Now().UnixNano())
	for w := 0; w < cfg.Concurrency; w++ {
		b.gens = append(b.gens, clickstream.New(seed+uint64(w)*0x9e3779b97f4a7c15, max(1, cfg.Devices/cfg.Concurrency)))
	}
	res := &Result{Started: time.Now().UTC()}
	res.Config.Batch, res.Config.Concurrency, res.Config.ProbeEvery, res.Config.Duration = cfg.Batch, cfg.Concurrency, cfg.ProbeEvery, cfg.Duration.String()

	watchCtx, stopWatching := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWatching(); wg.Wait() }()
	brokers := strings.Split(b.cfg.Brokers, ",")
	wg.Add(2)
	go func() { defer wg.Done(); b.watchResolved(watchCtx, brokers) }()
	go func() { defer wg.Done(); b.watchMemberships(watchCtx, brokers) }()
	if cfg.ClickHouse != "" {
		wg.Add(1)
		go func() { defer wg.Done(); b.watchRows(watchCtx) }()
	}

	// Warm up (consumers join their groups, connections open, the
	// devices are seen a first time) at the first rate; its probes are
	// not counted.
	say(cfg, "warming up for %v at %d events/s", cfg.Warmup, cfg.Rates[0])
	b.drive(ctx, -1, cfg.Rates[0], cfg.Warmup)
	if !b.waitOutstanding(ctx, -1, 20*time.Second) {
		say(cfg, "warm-up probes still outstanding after 20 s: the pipeline is slow to start")
	}
	for i, rate := range cfg.Rates {
		s := newStep(rate)
		b.mu.Lock()
		b.steps = append(b.steps, s)
		b.mu.Unlock()
		before, cpuBefore := scrapeAll(ctx, cfg.Metrics), cpuTimes(cfg.CPU)
		start := s.start
		sent, failed, probes, firstErr := b.drive(ctx, i, rate, cfg.Duration)
		elapsed := time.Since(start)
		s.EventsSent, s.FailedEvents, s.Probes, s.FirstError = sent, failed, probes, firstErr
		s.AchievedRate = float64(sent-failed) / elapsed.Seconds()
		s.ElapsedSeconds = elapsed.Seconds()
		// Throughput is what each stage handled while the rate was
		// offered: a stage that keeps up shows the rate, one that cannot
		// shows its ceiling (the drain after it is not counted).
		after, cpuAfter := scrapeAll(ctx, cfg.Metrics), cpuTimes(cfg.CPU)
		window := time.Since(start).Seconds()
		s.CPU = map[string]float64{}
		for name, t := range cpuAfter {
			if t0, ok := cpuBefore[name]; ok {
				s.CPU[name] = (t - t0) / window
			}
		}
		b.waitOutstanding(ctx, i, cfg.Drain)
		s.Throughput = map[string]float64{}
		for svc := range cfg.Metrics {
			s.Throughput[svc] = (after[svc].processed - before[svc].processed) / window
		}
		if st, ok := after["stitcher"]; ok {
			if n := st.processed - before["stitcher"].processed; n > 0 {
				s.NewProfileShare = (st.newProfiles - before["stitcher"].newProfiles) / n
			}
		}
		if seg, ok := after["segmenter"]; ok {
			s.EvaluationsPerS = (seg.evaluations - before["segmenter"].evaluations) / window
			s.TransitionsPerS = (seg.transitions - before["segmenter"].transitions) / window
		}
		b.mu.Lock() // late copies may still be recording
		s.Resolved = summarize(s.hists[resolvedKind], probes)
		s.Trigger = summarize(s.hists[triggerKind], probes)
		if cfg.ClickHouse != "" {
			s.Row = summarize(s.hists[rowKind], probes)
		}
		s.Timeline = s.timeline()
		b.mu.Unlock()
		res.Steps = append(res.Steps, *s)
		say(cfg, "%d events/s: achieved %.0f/s; resolved p50 %.0f ms p99 %.0f ms; trigger p50 %.0f ms p99 %.0f ms (%d missing); %.0f evaluations/s",
			rate, s.AchievedRate, s.Resolved.P50, s.Resolved.P99, s.Trigger.P50, s.Trigger.P99, s.Trigger.Missing, s.EvaluationsPerS)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	return res, nil
}

func say(cfg Config, format string, args ...any) {
	if !cfg.Quiet {
		fmt.Fprintf(os.Stderr, "pipebench: "+format+"\n", args...)
	}
}

// waitOutstanding waits until every probe of step has been resolved,
// triggered and (with ClickHouse) loaded, or until d passes.
func (b *bench) waitOutstanding(ctx context.Context, step int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n := 0
		b.mu.Lock()
		for _, p := range b.probes {
			if p.step == step && (!p.arrived[resolvedKind] || !p.arrived[triggerKind] || (b.cfg.ClickHouse != "" && !p.arrived[rowKind])) {
				n++
			}
		}
		b.mu.Unlock()
		if n == 0 {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// drive sends rate events/s for d, in batches over cfg.Concurrency
// connections, and returns what it sent.
func (b *bench) drive(ctx context.Context, step, rate int, d time.Duration) (sent, failed, probes int64, firstErr string) {
	cfg := b.cfg
	interval := time.Duration(float64(time.Second) * float64(cfg.Batch) / float64(rate))
	slots := make(chan time.Time, cfg.Concurrency)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var errOnce sync.Once
	var wg sync.WaitGroup
	var nSent, nFailed, nProbes atomic.Int64
	for w := 0; w < cfg.Concurrency; w++ {
		gen := b.gens[w]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for range slots {
				var ids []string
				body, ids = b.request(body[:0], gen, step)
				nProbes.Add(int64(len(ids)))
				status, err := b.post(ctx, body)
				nSent.Add(int64(cfg.Batch))
				if err != nil || status != http.StatusOK {
					nFailed.Add(int64(cfg.Batch))
					errOnce.Do(func() { firstErr = fmt.Sprintf("status %d: %v", status, err) })
					b.mu.Lock()
					for _, id := range ids {
						delete(b.probes, id)
					}
					b.mu.Unlock()
					nProbes.Add(-int64(len(ids)))
				}
			}
		}()
	}
	var bar *progress.Bar
	if step >= 0 && !cfg.Quiet {
		bar = progress.New(os.Stderr, fmt.Sprintf("pipebench: %d events/s", rate), int64(d/time.Second), "s")
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	next := start
loop:
	for i := 0; ; i++ {
		next = start.Add(time.Duration(i) * interval)
		if wait := time.Until(next); wait > 0 {
			select {
			case <-ctx.Done():
				break loop
			case <-time.After(wait):
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case slots <- next:
		}
		select {
		case <-tick.C:
			if bar != nil {
				bar.Set(int64(time.Since(start)/time.Second), fmt.Sprintf("sent %d (%.0f/s), %d probes", nSent.Load(), float64(nSent.Load())/time.Since(start).Seconds(), nProbes.Load()))
			}
		default:
		}
	}
	close(slots)
	wg.Wait()
	if bar != nil {
		bar.Done(fmt.Sprintf("sent %d events (%.0f/s), %d failed", nSent.Load(), float64(nSent.Load())/time.Since(start).Seconds(), nFailed.Load()))
	}
	return nSent.Load(), nFailed.Load(), nProbes.Load(), firstErr
}

// request builds one /v1/batch body: shop clickstream with probes mixed
// in; it registers the probes and returns their message ids.
func (b *bench) request(body []byte, gen *clickstream.Clickstream, step int) ([]byte, []string) {
	now := time.Now()
	var ids []string
	body = append(body, `{"batch":[`...)
	for i := 0; i < b.cfg.Batch; i++ {
		if i > 0 {
			body = append(body, ',')
		}
		n := b.seq.Add(1)
		if n%int64(b.cfg.ProbeEvery) != 0 {
			body, _ = gen.Event(body, now, time.Time{})
			continue
		}
		id := "probe-" + b.runID + "-" + strconv.FormatInt(n, 10)
		dev := (n / int64(b.cfg.ProbeEvery)) % int64(b.cfg.ProbeDevices)
		body = fmt.Appendf(body, `{"type":"track","event":%q,"anonymousId":"bench-probe-%d","messageId":%q,"timestamp":%q,"properties":{"n":%d}}`,
			ToggleEvent, dev, id, now.UTC().Format(time.RFC3339Nano), n)
		ids = append(ids, id)
	}
	body = append(body, `],"sentAt":"`...)
	body = now.UTC().AppendFormat(body, time.RFC3339Nano)
	body = append(body, `"}`...)
	if len(ids) > 0 {
		b.mu.Lock()
		for _, id := range ids {
			b.probes[id] = &probe{step: step, sent: now}
		}
		b.mu.Unlock()
	}
	return body, ids
}

func (b *bench) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, strings.TrimSuffix(b.cfg.URL, "/")+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", b.auth)
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%s", bytes.TrimSpace(msg))
	}
	return resp.StatusCode, nil
}

func (b *bench) reader(brokers []string, topic string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "pipebench-" + b.runID + "-" + topic, Topic: topic,
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 50 * time.Millisecond, CommitInterval: time.Second})
}

func (b *bench) watchResolved(ctx context.Context, brokers []string) {
	r := b.reader(brokers, b.cfg.ResolvedTopic)
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		at := time.Now()
		if !bytes.Contains(m.Value, []byte("probe-"+b.runID)) {
			continue // not a probe: skip decoding
		}
		env := &eventv1.Envelope{}
		if proto.Unmarshal(m.Value, env) == nil {
			b.record(env.MessageId, resolvedKind, at)
		}
	}
}

func (b *bench) watchMemberships(ctx context.Context, brokers []string) {
	r := b.reader(brokers, b.cfg.MembershipTopic)
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		at := time.Now()
		ms := &segmentv1.Membership{}
		if proto.Unmarshal(m.Value, ms) != nil {
			continue
		}
		_, id, _ := strings.Cut(ms.CauseId, "/")
		b.record(id, triggerKind, at)
	}
}

// watchRows polls ClickHouse for the outstanding probes' rows, four times
// a second (so row latency is measured to within 250 ms), asking for the
// oldest few hundred at a time to keep the query itself cheap.
func (b *bench) watchRows(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		type pending struct {
			id   string
			sent time.Time
		}
		var out []pending
		b.mu.Lock()
		for id, p := range b.probes {
			if !p.arrived[rowKind] {
				out = append(out, pending{id, p.sent})
			}
		}
		b.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		sort.Slice(out, func(i, j int) bool { return out[i].sent.Before(out[j].sent) })
		if len(out) > 300 {
			out = out[:300]
		}
		var q strings.Builder
		fmt.Fprintf(&q, "SELECT message_id FROM %s.events WHERE ", b.cfg.Database)
		q.WriteString(probeRange(out[0].sent))
		q.WriteString(" AND message_id IN (")
		for i, p := range out {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("'" + p.id + "'")
		}
		q.WriteString(") FORMAT TabSeparated")
		resp, err := http.Post(strings.TrimSuffix(b.cfg.ClickHouse, "/")+"/", "text/plain", strings.NewReader(q.String()))
		if err != nil {
			continue
		}
		at := time.Now()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.record(sc.Text(), rowKind, at)
		}
		resp.Body.Close()
	}
}

// probeRange is the part of the events table that can hold the probes
// sent since oldest, in terms of its sorting key (workspace_id,
// toDate(timestamp), event, ...): the probes' event name and a time
// floor. Without it each poll read every message id loaded so far, and
// ClickHouse spent a growing share of the box's CPU on the benchmark's
// own queries (millions of rows into the last step of `make bench`). The
// floor leaves ten minutes for the collector's clock-skew correction.
func probeRange(oldest time.Time) string {
	floor := oldest.Add(-10 * time.Minute).UTC().Format("2006-01-02 15:04:05")
	return fmt.Sprintf("event = '%s' AND timestamp >= toDateTime('%s', 'UTC')", ToggleEvent, floor)
}

// counters are what a service's /metrics says it has done so far.
type counters struct{ processed, evaluations, transitions, newProfiles float64 }

func scrapeAll(ctx context.Context, urls map[string]string) map[string]counters {
	out := map[string]counters{}
	for svc, u := range urls {
		out[svc] = scrape(ctx, svc, u)
	}
	return out
}

// scrape reads the counters of one service from its Prometheus text.
func scrape(ctx context.Context, svc, u string) counters {
	var c counters
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	processed := "firstparty_" + svc + "_messages_committed_total"
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		switch {
		case svc == "collector" && strings.HasPrefix(name, "firstparty_collector_events_total") && strings.Contains(name, `outcome="accepted"`):
			c.processed += v
		case strings.HasPrefix(name, processed):
			c.processed += v
		case strings.HasPrefix(name, "firstparty_segmenter_evaluations_total"):
			c.evaluations += v
		case strings.HasPrefix(name, "firstparty_segmenter_transitions_total"):
			c.transitions += v
		case strings.HasPrefix(name, "firstparty_stitcher_events_total") && strings.Contains(name, `outcome="new_profile"`):
			c.newProfiles += v
		}
	}
	return c
}
