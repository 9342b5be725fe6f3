package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to two minutes, with
// three significant digits: a reported percentile is within 0.1% of the
// exact one.
const (
	histMin     = 1
	histMax     = int64(2 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSigFigs) }

// record adds one request latency to h, clamped into the trackable range.
func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	_ = h.RecordValue(us) // cannot fail: us is in range
}

// Latency summarizes request latencies in milliseconds.
type Latency struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
		Mean: h.Mean() / 1000,
	}
}

// statusConnError is the status-count key of requests that got no HTTP
// answer (refused, reset, timed out).
const statusConnError = "conn_error"

// Result is what one run measured; -json prints it as is.
type Result struct {
	URL         string  `json:"url"`
	Batch       int     `json:"batch"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"target_rate"`
	Seconds     float64 `json:"seconds"`
	// Events and requests that got 200, and all that were sent.
	Events          int64            `json:"events_ok"`
	Requests        int64            `json:"requests_ok"`
	EventsSent      int64            `json:"events_sent"`
	RequestsSent    int64            `json:"requests_sent"`
	EventsPerSec    float64          `json:"events_per_sec"`
	RequestsPerSec  float64          `json:"requests_per_sec"`
	BytesSent       int64            `json:"bytes_sent"`
	AvgEventBytes   float64          `json:"avg_event_bytes"`
	Latency         Latency          `json:"latency"`
	Status          map[string]int64 `json:"status"`
	FirstError      string           `json:"first_error,omitempty"`
	LatencyMeasured string           `json:"latency_measured"`
}

func (r *Result) finish(elapsed time.Duration) {
	r.Seconds = elapsed.Seconds()
	if r.Seconds > 0 {
		r.EventsPerSec = float64(r.Events) / r.Seconds
		r.RequestsPerSec = float64(r.Requests) / r.Seconds
	}
	if r.EventsSent > 0 {
		r.AvgEventBytes = float64(r.BytesSent) / float64(r.EventsSent)
	}
}

// writeText prints the result for a person.
func (r *Result) writeText(w io.Writer) {
	fmt.Fprintf(w, "url           %s\n", r.URL)
	fmt.Fprintf(w, "batch         %d events/request, %d connections", r.Batch, r.Concurrency)
	if r.Rate > 0 {
		fmt.Fprintf(w, ", target %.0f events/s", r.Rate)
	}
	fmt.Fprintf(w, "\nduration      %.1f s\n", r.Seconds)
	fmt.Fprintf(w, "accepted      %d events, %d requests (sent %d events, %d requests, %.0f B/event)\n", r.Events, r.Requests, r.EventsSent, r.RequestsSent, r.AvgEventBytes)
	fmt.Fprintf(w, "throughput    %.0f events/s, %.0f requests/s\n", r.EventsPerSec, r.RequestsPerSec)
	l := r.Latency
	fmt.Fprintf(w, "latency       p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  mean %.2f ms\n", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	fmt.Fprintf(w, "status        %s\n", formatStatus(r.Status))
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error   %s\n", r.FirstError)
	}
}

func formatStatus(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+strconv.FormatInt(m[k], 10))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
