package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	h := newHistogram()
	// 1 ms … 1000 ms, one each: the exact pN is N*10 ms.
	for i := 1; i <= 1000; i++ {
		record(h, time.Duration(i)*time.Millisecond)
	}
	l := summarize(h)
	within := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*0.001+0.001 { // 3 significant digits
			t.Errorf("%s = %.3f ms, want %.3f ms", name, got, want)
		}
	}
	within("p50", l.P50, 500)
	within("p90", l.P90, 900)
	within("p99", l.P99, 990)
	within("p99.9", l.P999, 999)
	within("max", l.Max, 1000)
	within("mean", l.Mean, 500.5)
}

func TestPercentilesSkewed(t *testing.T) {
	h := newHistogram()
	for i := 0; i < 990; i++ {
		record(h, 2*time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		record(h, 3*time.Second)
	}
	l := summarize(h)
	if math.Abs(l.P50-2) > 0.01 || math.Abs(l.P99-2) > 0.01 || math.Abs(l.Max-3000) > 3 {
		t.Errorf("skewed: %+v; want p50 = p99 = 2 ms, max 3 s", l)
	}
	// The slowest 1% is past p99 but inside p99.9.
	if math.Abs(l.P999-3000) > 3 {
		t.Errorf("p99.9 = %v, want 3000 ms", l.P999)
	}
}

func TestPercentilesEdges(t *testing.T) {
	if l := summarize(newHistogram()); l != (Latency{}) {
		t.Errorf("empty histogram summarized as %+v", l)
	}
	h := newHistogram()
	record(h, 0)              // clamped up to 1 µs
	record(h, 10*time.Minute) // clamped down to the 2-minute ceiling
	if l := summarize(h); l.Max < 119_000 || l.P50 > 0.002 {
		t.Errorf("clamping: %+v", l)
	}
}

func TestWorkerMergeAndRates(t *testing.T) {
	a, b := &worker{total: newHistogram(), interval: newHistogram(), status: map[string]int64{}}, &worker{total: newHistogram(), interval: newHistogram(), status: map[string]int64{}}
	a.record(20, 15000, 200, 4*time.Millisecond, nil)
	b.record(20, 15000, 503, 2*time.Second, errString("503 Service Unavailable"))
	b.record(20, 15000, 0, time.Second, errString("connection refused"))
	var tl tally
	tl.add(a.tally)
	tl.add(b.tally)
	r := Result{Events: tl.eventsOK, Requests: tl.requestsOK, EventsSent: tl.eventsSent, BytesSent: tl.bytes}
	r.finish(2 * time.Second)
	if r.Events != 20 || r.EventsSent != 60 || r.EventsPerSec != 10 || r.RequestsPerSec != 0.5 || r.AvgEventBytes != 750 {
		t.Errorf("result = %+v", r)
	}
	if b.status["503"] != 1 || b.status[statusConnError] != 1 || b.firstErr != "503 Service Unavailable" {
		t.Errorf("status = %v, first error %q", b.status, b.firstErr)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
