package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// statusEvery is how often the view prints a line when it cannot redraw.
const statusEvery = 5 * time.Second

// run is the demo's shell: it starts the membership watcher and the shop,
// scrapes every stage once a second into the view, waits for the pipeline
// to drain, prints the ClickHouse queries and judges the run.
func run(ctx context.Context, cfg Config, out io.Writer, tty bool, size func() Layout) error {
	brokers := strings.Split(cfg.Brokers, ",")
	fmt.Fprintf(out, "demo: %s\n\n", cfg)
	start := time.Now()
	w, err := startWatcher(ctx, brokers)
	if err != nil {
		return err
	}
	defer w.close()
	triggers := newTriggers(64)
	watchCtx, stopWatching := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWatching(); wg.Wait() }()
	wg.Add(1)
	go func() { defer wg.Done(); w.run(watchCtx, cfg.Workspace, start, triggers) }()

	s := newShop(cfg)
	sendCtx, stopSending := context.WithTimeout(ctx, cfg.Duration)
	defer stopSending()
	sending := make(chan struct{})
	go func() { defer close(sending); s.run(sendCtx) }()

	stages := make([]string, len(cfg.Metrics))
	for i, e := range cfg.Metrics {
		stages[i] = e.Stage
	}
	tr := newTracker(stages, 4)
	ch := &clickhouse{base: cfg.ClickHouseHTTP, database: cfg.Database, client: &http.Client{Timeout: 30 * time.Second}}
	scraper := &http.Client{Timeout: 2 * time.Second}
	d := &display{out: out, tty: tty, size: size}
	var (
		inCH                int64
		counted             bool
		countErr            string
		drainedAt, sentDone time.Time
	)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		now := time.Now()
		scrapeAll(ctx, scraper, cfg.Metrics, tr, now)
		sent := s.snapshot()
		sum := triggers.summary()
		phase := "sending"
		select {
		case <-sending:
			phase = "draining"
			if sentDone.IsZero() {
				sentDone = now
			}
		default:
		}
		if phase == "draining" {
			// Done when every stage has caught up and ClickHouse holds
			// what the collector accepted, or when the wait runs out.
			n, err := countInClickHouse(ctx, ch, cfg.Workspace, start)
			inCH, counted, countErr = n, err == nil, errString(err)
			if tr.drained() && counted && n >= sent.Accepted && drainedAt.IsZero() {
				drainedAt = now
			}
		}
		f := Frame{Elapsed: now.Sub(start), Duration: cfg.Duration, Phase: phase, Sent: sent,
			SendRate: float64(sent.Accepted) / max(time.Second, min(now.Sub(start), cfg.Duration)).Seconds(), Stages: tr.views(),
			NewProfiles: tr.since("stitcher", func(r Reading) float64 { return r.NewProfiles }),
			Merges:      tr.since("stitcher", func(r Reading) float64 { return r.Merges }), Triggers: sum}
		noTrigger := sum.First == 0 && now.Sub(start) > cfg.TriggerWithin
		finished := phase == "draining" && (!drainedAt.IsZero() || now.Sub(sentDone) > cfg.Settle) &&
			(sum.First > 0 || now.Sub(start) > cfg.TriggerWithin)
		if noTrigger || finished || ctx.Err() != nil {
			f.Phase = "done"
			d.show(f, true)
			break
		}
		d.show(f, false)
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	stopSending()
	<-sending
	sent := s.snapshot()
	sum := triggers.summary()
	if sum.First > 0 && !counted {
		n, err := countInClickHouse(ctx, ch, cfg.Workspace, start)
		inCH, counted, countErr = n, err == nil, errString(err)
	}
	if sum.First > 0 && counted && inCH > 0 {
		fmt.Fprintf(out, "\nClickHouse holds %s of the %s events the collector accepted. What a data team would ask (database %s):\n",
			num(float64(inCH)), num(float64(sent.Accepted)), cfg.Database)
		printQueries(ctx, out, ch, queries(cfg.Workspace, start))
		showPerson(ctx, out, ch, cfg, start)
	}
	return verdict(Outcome{Accepted: sent.Accepted, FirstErr: sent.FirstErr, FirstTrigger: sum.First, TriggerWithin: cfg.TriggerWithin,
		InClickHouse: inCH, Counted: counted, CountErr: countErr})
}

// display draws frames: in place on a terminal, as a status line every
// few seconds otherwise.
type display struct {
	out       io.Writer
	tty       bool
	size      func() Layout
	lines     int
	lastPrint time.Time
}

func (d *display) show(f Frame, final bool) {
	if d.tty {
		frame := render(f, d.size())
		fmt.Fprint(d.out, redraw(d.lines, frame))
		d.lines = strings.Count(frame, "\n")
		return
	}
	if final {
		fmt.Fprintln(d.out, statusLine(f))
		fmt.Fprint(d.out, "\n"+render(f, Layout{}))
		return
	}
	if time.Since(d.lastPrint) >= statusEvery {
		fmt.Fprintln(d.out, statusLine(f))
		d.lastPrint = time.Now()
	}
}

func scrapeAll(ctx context.Context, client *http.Client, eps []Endpoint, tr *tracker, at time.Time) {
	type answer struct {
		m   Metrics
		err error
	}
	answers := make([]answer, len(eps))
	var wg sync.WaitGroup
	for i, e := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].m, answers[i].err = scrape(ctx, client, e.URL)
		}()
	}
	wg.Wait()
	for i, e := range eps {
		if answers[i].err != nil {
			tr.observe(e.Stage, at, Reading{}, answers[i].err.Error())
			continue
		}
		tr.observe(e.Stage, at, read(e.Stage, answers[i].m), "")
	}
}

func scrape(ctx context.Context, client *http.Client, u string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading metrics: %s answered %s", u, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func countInClickHouse(ctx context.Context, ch *clickhouse, workspace string, start time.Time) (int64, error) {
	r, err := ch.query(ctx, countQuery(workspace, start))
	if err != nil {
		return 0, err
	}
	if len(r.Rows) != 1 || len(r.Rows[0]) != 1 {
		return 0, fmt.Errorf("counting events: unexpected answer %v", r)
	}
	n, err := strconv.ParseInt(r.Rows[0][0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counting events: %w", err)
	}
	return n, nil
}

func printQueries(ctx context.Context, out io.Writer, ch *clickhouse, qs []Query) {
	for i, q := range qs {
		fmt.Fprintf(out, "\n── %d. %s\n%s\n\n", i+1, q.Title, q.SQL)
		r, err := ch.query(ctx, q.SQL)
		if err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
			continue
		}
		fmt.Fprint(out, formatTable(r))
	}
}

// showPerson looks up, through the profile API, one person the demo saw
// on two devices: the customer-360 view of a merge.
func showPerson(ctx context.Context, out io.Writer, ch *clickhouse, cfg Config, start time.Time) {
	if cfg.APIURL == "" || cfg.AdminKey == "" {
		return
	}
	r, err := ch.query(ctx, "SELECT user_id FROM events FINAL WHERE "+scope(cfg.Workspace, start)+
		" AND type = 'identify' AND user_id != '' GROUP BY user_id HAVING uniqExact(anonymous_id) >= 2 ORDER BY user_id LIMIT 1")
	if err != nil || len(r.Rows) == 0 {
		return
	}
	user := r.Rows[0][0]
	u := strings.TrimSuffix(cfg.APIURL, "/") + "/v1/profiles/" + url.PathEscape("user_id:"+user)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+cfg.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(out, "\nprofile API: %v\n", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "\nprofile API: GET %s answered %s\n", u, resp.Status)
		return
	}
	p, err := summarizeProfile(body)
	if err != nil {
		fmt.Fprintf(out, "\nprofile API: %v\n", err)
		return
	}
	fmt.Fprintf(out, "\n── One person seen on two devices (GET %s/v1/profiles/user_id:%s)\n%s", strings.TrimSuffix(cfg.APIURL, "/"), user, p)
}

// summarizeProfile renders the API's profile document in a few lines.
func summarizeProfile(body []byte) (string, error) {
	var p struct {
		ProfileID  string `json:"profile_id"`
		Identities []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"identities"`
		Traits   map[string]any `json:"traits"`
		Segments []string       `json:"segments"`
		Merged   []string       `json:"merged_profiles"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return "", fmt.Errorf("decoding profile: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "profile     %s (absorbed: %s)\n", p.ProfileID, strings.Join(p.Merged, ", "))
	ids := make([]string, len(p.Identities))
	for i, id := range p.Identities {
		ids[i] = id.Type + ":" + id.Value
	}
	fmt.Fprintf(&b, "identities  %s\n", strings.Join(ids, ", "))
	if t, err := json.Marshal(p.Traits); err == nil {
		fmt.Fprintf(&b, "traits      %s\n", t)
	}
	fmt.Fprintf(&b, "segments    %s\n", strings.Join(p.Segments, ", "))
	return b.String(), nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
