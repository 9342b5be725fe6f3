package stage

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
	s.log.add("commit:" + string(msgs[len(msgs)-1].Value))
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

func TestRunnerOrderAndRetry(t *testing.T) {
	var rec recorder
	src := &fakeSource{batches: [][]kafka.Message{msgs("a1", "a2"), msgs("b1")}, log: &rec}
	sink := &fakeSink{fail: 1, log: &rec}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Name: "test", Source: src, Sink: sink, Handler: echo(&rec), Log: quiet(), NewBackOff: fastRetry}
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, func() bool { return len(rec.get()) >= 10 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []string{
		"handle:a1", "produce:failed", // transient failure: nothing committed
		"handle:a1", "produce:a1", "state:a1", "commit:a2", // retried whole batch; commit covers its last message
		"handle:b1", "produce:b1", "state:b1", "commit:b1",
	}
	log := rec.get()
	if len(log) != len(want) {
		t.Fatalf("log = %v\nwant %v", log, want)
	}
	for i := range want {
		if log[i] != want[i] {
			t.Fatalf("step %d = %q, want %q\nlog = %v", i, log[i], want[i], log)
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

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}
