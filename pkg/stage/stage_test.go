package stage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
)

// recorder is a step log shared by the fakes and the test goroutine.
type recorder struct {
	mu    sync.Mutex
	steps []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.steps = append(r.steps, s); r.mu.Unlock() }

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.steps...)
}

// fakeSource hands out the given batches, then blocks; it records commits.
type fakeSource struct {
	mu      sync.Mutex
	batches [][]kafka.Message
	log     *recorder
}

func (s *fakeSource) FetchBatch(ctx context.Context) ([]kafka.Message, error) {
	s.mu.Lock()
	if len(s.batches) > 0 {
		b := s.batches[0]
		s.batches = s.batches[1:]
		s.mu.Unlock()
		return b, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *fakeSource) Commit(_ context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vals := make([]string, len(msgs))
	for i, m := range msgs {
		vals[i] = string(m.Value)
	}
	s.log.add("commit:" + strings.Join(vals, ","))
	return nil
}

func (s *fakeSource) Lag() int64 { return 0 }

type fakeSink struct {
	mu   sync.Mutex
	fail int // fail this many calls first
	log  *recorder
}

func (s *fakeSink) Produce(_ context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		s.log.add("produce:failed")
		return errors.New("broker unavailable")
	}
	s.log.add("produce:" + string(msgs[0].Value))
	return nil
}

func msgs(vals ...string) []kafka.Message {
	var out []kafka.Message
	for _, v := range vals {
		out = append(out, kafka.Message{Value: []byte(v)})
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func fastRetry() backoff.BackOff { return &backoff.ZeroBackOff{} }

func echo(log *recorder) Handler {
	return HandlerFunc(func(ctx context.Context, batch []kafka.Message) (Result, error) {
		log.add("handle:" + string(batch[0].Value))
		out := kafka.Message{Topic: "out", Value: batch[0].Value}
		return Result{Outputs: []kafka.Message{out}, AfterAck: func(context.Context) error {
			log.add("state:" + string(batch[0].Value))
			return nil
		}}, nil
	})
}

// index is the position of step in log, -1 when absent.
func index(log []string, step string) int { return slices.Index(log, step) }

// committedAt is the position of the first commit that covers value.
func committedAt(log []string, value string) int {
	for i, s := range log {
		if c, ok := strings.CutPrefix(s, "commit:"); ok && slices.Contains(strings.Split(c, ","), value) {
			return i
		}
	}
	return -1
}

func TestRunnerOrderAndRetry(t *testing.T) {
	for _, sequential := range []bool{false, true} {
		var rec recorder
		src := &fakeSource{batches: [][]kafka.Message{msgs("a1", "a2"), msgs("b1")}, log: &rec}
		sink := &fakeSink{fail: 1, log: &rec}
		ctx, cancel := context.WithCancel(context.Background())
		r := &Runner{Name: "test", Source: src, Sink: sink, Handler: echo(&rec), Log: quiet(), NewBackOff: fastRetry, Sequential: sequential}
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		waitFor(t, func() bool { return committedAt(rec.get(), "b1") >= 0 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		log := rec.get()
		// The transient failure retried the outputs, not the handler.
		if n := strings.Count(strings.Join(log, " "), "handle:a1"); n != 1 {
			t.Errorf("sequential=%v: a1 handled %d times: %v", sequential, n, log)
		}
		steps := []int{index(log, "handle:a1"), index(log, "produce:failed"), index(log, "produce:a1"), index(log, "state:a1"), committedAt(log, "a1")}
		for i := 1; i < len(steps); i++ {
			if steps[i-1] < 0 || steps[i] <= steps[i-1] {
				t.Fatalf("sequential=%v: steps of a out of order %v: %v", sequential, steps, log)
			}
		}
		if committedAt(log, "a2") != steps[4] {
			t.Fatalf("sequential=%v: a1 and a2 not committed together: %v", sequential, log)
		}
		// b1 is produced after a1, its state written after its ack, and
		// it is committed no earlier than a.
		if hb, pb, sb, cb := index(log, "handle:b1"), index(log, "produce:b1"), index(log, "state:b1"), committedAt(log, "b1"); !(hb >= 0 && hb < pb && pb > steps[2] && pb < sb && sb < cb && cb >= steps[4]) {
			t.Fatalf("sequential=%v: b1 out of order: %v", sequential, log)
		}
		if sequential && index(log, "handle:b1") < index(log, "commit:a1,a2") {
			t.Fatalf("sequential runner handled b1 before a1 was committed: %v", log)
		}
	}
}

// gateSink blocks every Produce until the test lets it through, telling
// the test which batch (first value) is waiting; fail makes the next
// released call fail instead.
type gateSink struct {
	waiting chan string
	release chan bool // true: succeed, false: fail
	log     *recorder
}

func (s *gateSink) Produce(ctx context.Context, msgs ...kafka.Message) error {
	v := string(msgs[0].Value)
	select {
	case s.waiting <- v:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case ok := <-s.release:
		if !ok {
			s.log.add("produce:failed:" + v)
			return errors.New("broker unavailable")
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	s.log.add("produce:" + v)
	return nil
}

// TestPipelineOverlapsAndKeepsOrder: the next batch is handled while the
// previous one's outputs wait for their ack; a produce that fails while
// later batches are handled is retried before any of them is produced;
// nothing is committed before its outputs and every earlier batch's are
// acknowledged.
func TestPipelineOverlapsAndKeepsOrder(t *testing.T) {
	var rec recorder
	src := &fakeSource{batches: [][]kafka.Message{msgs("a"), msgs("b"), msgs("c")}, log: &rec}
	sink := &gateSink{waiting: make(chan string), release: make(chan bool), log: &rec}
	handledB := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, batch []kafka.Message) (Result, error) {
		v := string(batch[0].Value)
		rec.add("handle:" + v)
		if v == "b" {
			close(handledB)
		}
		return Result{Outputs: []kafka.Message{{Topic: "out", Value: batch[0].Value}}, AfterAck: func(context.Context) error {
			rec.add("state:" + v)
			return nil
		}}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Name: "test", Source: src, Sink: sink, Handler: h, Log: quiet(), NewBackOff: fastRetry, DrainTimeout: time.Minute}
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	if got := <-sink.waiting; got != "a" {
		t.Fatalf("first produce is of %q", got)
	}
	<-handledB // b is handled while a waits for its ack
	sink.release <- false
	if got := <-sink.waiting; got != "a" { // the retry comes first, before b
		t.Fatalf("after a's failure the producer sent %q", got)
	}
	if log := rec.get(); committedAt(log, "a") >= 0 || committedAt(log, "b") >= 0 {
		t.Fatalf("committed before the outputs were acknowledged: %v", log)
	}
	sink.release <- true
	for _, want := range []string{"b", "c"} {
		if got := <-sink.waiting; got != want {
			t.Fatalf("produced %q, want %q", got, want)
		}
		sink.release <- true
	}
	waitFor(t, func() bool { return committedAt(rec.get(), "c") >= 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log := rec.get()
	for _, v := range []string{"a", "b", "c"} {
		if !(index(log, "produce:"+v) < index(log, "state:"+v) && index(log, "state:"+v) < committedAt(log, v)) {
			t.Fatalf("%s: produce, state and commit out of order: %v", v, log)
		}
	}
	if !(index(log, "produce:a") < index(log, "produce:b") && index(log, "produce:b") < index(log, "produce:c")) {
		t.Fatalf("outputs produced out of order: %v", log)
	}
	if committedAt(log, "b") < index(log, "state:a") {
		t.Fatalf("b committed before a was done: %v", log)
	}
}

// TestAbandonedPipelineCommitsNothing: a hard stop while one batch waits
// for its ack and the next is handled commits neither.
func TestAbandonedPipelineCommitsNothing(t *testing.T) {
	var rec recorder
	src := &fakeSource{batches: [][]kafka.Message{msgs("a"), msgs("b")}, log: &rec}
	sink := &gateSink{waiting: make(chan string), release: make(chan bool), log: &rec}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Name: "test", Source: src, Sink: sink, Handler: echo(&rec), Log: quiet(), NewBackOff: fastRetry, DrainTimeout: 0}
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	<-sink.waiting
	waitFor(t, func() bool { return index(rec.get(), "handle:b") >= 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.get() {
		if strings.HasPrefix(s, "commit:") || strings.HasPrefix(s, "state:") {
			t.Fatalf("abandoned batches were acted on: %v", rec.get())
		}
	}
}

// blockingHandler signals when it starts and waits for release.
func blockingHandler(started chan<- struct{}, release <-chan struct{}) Handler {
	return HandlerFunc(func(ctx context.Context, batch []kafka.Message) (Result, error) {
		started <- struct{}{}
		select {
		case <-release:
			return Result{}, nil
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	})
}

func TestShutdownDrainsInFlightBatch(t *testing.T) {
	var rec recorder
	src := &fakeSource{batches: [][]kafka.Message{msgs("x")}, log: &rec}
	started, release := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Name: "test", Source: src, Handler: blockingHandler(started, release), Log: quiet(), DrainTimeout: time.Minute, NewBackOff: fastRetry}
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	<-started
	cancel() // SIGTERM while the batch is in flight
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if log := rec.get(); len(log) != 1 || log[0] != "commit:x" {
		t.Fatalf("in-flight batch was not finished and committed: %v", log)
	}
}

func TestHardStopAbandonsWithoutCommit(t *testing.T) {
	var rec recorder
	src := &fakeSource{batches: [][]kafka.Message{msgs("x")}, log: &rec}
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Name: "test", Source: src, Handler: blockingHandler(started, make(chan struct{})), Log: quiet(), DrainTimeout: 0, NewBackOff: fastRetry}
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if log := rec.get(); len(log) != 0 {
		t.Fatalf("abandoned batch must not be committed: %v", log)
	}
}

// waitFor polls cond; a condition never met is caught by go test's own
// timeout, not by a wall-clock limit here.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(time.Millisecond)
	}
}
