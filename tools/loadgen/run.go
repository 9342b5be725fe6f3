package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/firstparty/firstparty/tools/clickstream"
	"github.com/firstparty/firstparty/tools/progress"
)

// worker is one connection's sender and its own tallies (locked only
// against the once-a-second progress reader, so workers never contend).
type worker struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram
	interval *hdrhistogram.Histogram // since the last progress line
	status   map[string]int64
	tally    tally
	firstErr string
}

type tally struct{ eventsOK, requestsOK, eventsSent, requestsSent, bytes int64 }

func (t *tally) add(o tally) {
	t.eventsOK += o.eventsOK
	t.requestsOK += o.requestsOK
	t.eventsSent += o.eventsSent
	t.requestsSent += o.requestsSent
	t.bytes += o.bytes
}

// run sends load as cfg says until -duration passes, -events are sent or
// ctx is cancelled, and returns what it measured. Latency is the time from
// sending a request to reading its whole answer.
func run(ctx context.Context, cfg Config, out io.Writer) Result {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency,
		MaxConnsPerHost:     cfg.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.WriteKey+":"))
	base := strings.TrimSuffix(cfg.URL, "/")

	start := time.Now()
	sendCtx, stopSending := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer stopSending()

	var budget atomic.Int64 // events left to send when -events is set
	budget.Store(cfg.Events)
	var interval time.Duration // between one worker's requests, with -rate
	if cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(cfg.Batch) * float64(cfg.Concurrency) / cfg.Rate)
	}
	perWorker := max(1, cfg.Devices/cfg.Concurrency)

	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{total: newHistogram(), interval: newHistogram(), status: map[string]int64{}}
		workers[i] = w
		gen := clickstream.New(cfg.Seed+uint64(i)*0x5851f42d4c957f2d, perWorker)
		// Workers start spread over one interval so a paced run is smooth.
		next := start
		if interval > 0 {
			next = start.Add(interval * time.Duration(i) / time.Duration(cfg.Concurrency))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for sendCtx.Err() == nil {
				n := cfg.Batch
				if cfg.Events > 0 {
					left := budget.Add(-int64(n))
					if left+int64(n) <= 0 {
						return
					}
					if left < 0 {
						n += int(left)
					}
				}
				if interval > 0 {
					if !sleepUntil(sendCtx, next) {
						return
					}
					next = next.Add(interval)
					if lag := time.Since(next); lag > time.Second {
						next = time.Now() // far behind: do not burst to catch up
					}
				}
				var path string
				buf, path = gen.Request(buf[:0], n, time.Now())
				status, took, err := send(ctx, client, base+path, auth, buf)
				w.record(n, len(buf), status, took, err)
				if status == 0 && !sleepUntil(sendCtx, time.Now().Add(50*time.Millisecond)) {
					return // no answer at all: do not spin on a collector that is down
				}
			}
		}()
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if out != nil {
		bar := progress.New(out, fmt.Sprintf("loadgen: batch %d", cfg.Batch), int64(cfg.Duration/time.Second), "s")
		reportProgress(bar, start, workers, done)
		bar.Done("finished")
	} else {
		<-done
	}
	elapsed := time.Since(start)

	res := Result{
		URL: cfg.URL, Batch: cfg.Batch, Concurrency: cfg.Concurrency, Rate: cfg.Rate,
		Status:          map[string]int64{},
		LatencyMeasured: "request sent to answer read",
	}
	all := newHistogram()
	var t tally
	for _, w := range workers {
		all.Merge(w.total)
		t.add(w.tally)
		for k, v := range w.status {
			res.Status[k] += v
		}
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
	}
	res.Events, res.Requests, res.EventsSent, res.RequestsSent, res.BytesSent = t.eventsOK, t.requestsOK, t.eventsSent, t.requestsSent, t.bytes
	res.Latency = summarize(all)
	res.finish(elapsed)
	return res
}

// send posts one body and reads the whole answer so the connection is
// reused; status is 0 when no answer came.
func send(ctx context.Context, client *http.Client, url, auth string, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	req.Header.Set("User-Agent", "firstparty-loadgen/1")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(t0), err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, took, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return resp.StatusCode, took, nil
}

func (w *worker) record(events, bytes, status int, took time.Duration, err error) {
	key := statusConnError
	if status != 0 {
		key = strconv.Itoa(status)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	record(w.total, took)
	record(w.interval, took)
	w.status[key]++
	w.tally.eventsSent += int64(events)
	w.tally.requestsSent++
	w.tally.bytes += int64(bytes)
	if status == http.StatusOK {
		w.tally.eventsOK += int64(events)
		w.tally.requestsOK++
	} else if w.firstErr == "" && err != nil {
		w.firstErr = err.Error()
	}
}

// reportProgress moves the bar once a second, with the last second's
// rate and latency, until done is closed.
func reportProgress(bar *progress.Bar, start time.Time, workers []*worker, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	interval := newHistogram()
	var last tally
	lastAt := start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			interval.Reset()
			var t tally
			var failed int64
			for _, w := range workers {
				w.mu.Lock()
				interval.Merge(w.interval)
				w.interval.Reset()
				t.add(w.tally)
				failed += w.tally.requestsSent - w.tally.requestsOK
				w.mu.Unlock()
			}
			secs := now.Sub(lastAt).Seconds()
			l := summarize(interval)
			bar.Set(int64(now.Sub(start)/time.Second), fmt.Sprintf("%6.0f events/s %5.0f req/s  p50 %5.1f ms  p99 %6.1f ms  ok %d events, not ok %d requests",
				float64(t.eventsOK-last.eventsOK)/secs, float64(t.requestsOK-last.requestsOK)/secs, l.P50, l.P99, t.eventsOK, failed))
			last, lastAt = t, now
		}
	}
}

// sleepUntil waits for t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
