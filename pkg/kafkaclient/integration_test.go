package kafkaclient_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/traceid"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// seen counts how often each message value was handled.
type seen struct {
	mu     sync.Mutex
	counts map[string]int
}

func (s *seen) add(batch []kafka.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range batch {
		s.counts[string(m.Value)]++
	}
}

func (s *seen) distinct() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.counts) }

func (s *seen) count(v string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.counts[v] }

func produce(t *testing.T, p *kafkaclient.Producer, topic string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(traceid.With(context.Background(), traceid.New()), 60*time.Second)
	defer cancel()
	var values []string
	for start := 0; start < n; start += 250 {
		var msgs []kafka.Message
		for i := start; i < start+250 && i < n; i++ {
			v := fmt.Sprintf("msg-%05d", i)
			values = append(values, v)
			msgs = append(msgs, kafka.Message{Topic: topic, Key: []byte(fmt.Sprintf("device-%d", i%37)), Value: []byte(v)})
		}
		if err := p.Produce(ctx, msgs...); err != nil {
			t.Fatalf("producing: %v", err)
		}
	}
	return values
}

// TestKilledConsumerLosesNothing produces through the pkg producer to the real
// broker, kills a consumer in the middle of a batch (its context is cancelled
// before the batch is committed), starts a new consumer in the same group,
// and checks that every message was processed at least once, that the killed
// batch was delivered again rather than skipped, and that every input reached
// the output topic.
func TestKilledConsumerLosesNothing(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	in, out := names.Raw, names.Valid
	group := testinfra.Unique(t)

	p, err := kafkaclient.NewProducer(kc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 3000
	values := produce(t, p, in, n)

	cc := kafkaclient.ConsumerConfig{GroupID: group, BatchSize: 200, BatchWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}
	handled := &seen{counts: map[string]int{}}
	forward := func(batch []kafka.Message) stage.Result {
		outs := make([]kafka.Message, len(batch))
		for i, m := range batch {
			outs[i] = kafka.Message{Topic: out, Key: m.Key, Value: m.Value}
			kafkaclient.CarryTrace(&outs[i], m)
		}
		return stage.Result{Outputs: outs}
	}

	// First instance: dies while handling its third batch.
	c1, err := kafkaclient.NewConsumer(kc, cc, quiet(), in)
	if err != nil {
		t.Fatal(err)
	}
	ctx1, kill := context.WithCancel(context.Background())
	var killed []kafka.Message
	batches := 0
	r1 := &stage.Runner{Name: "first", Source: c1, Sink: p, Log: quiet(), DrainTimeout: 0,
		Handler: stage.HandlerFunc(func(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
			handled.add(batch)
			if batches++; batches == 3 {
				killed = batch
				kill() // the process dies here: outputs not produced, offsets not committed
				<-ctx.Done()
				return stage.Result{}, ctx.Err()
			}
			return forward(batch), nil
		})}
	if err := r1.Run(ctx1); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); err != nil {
		t.Logf("closing killed consumer: %v", err)
	}
	if len(killed) == 0 {
		t.Fatal("the first consumer never reached its third batch")
	}
	if handled.distinct() >= n {
		t.Fatal("the first consumer saw everything; the kill proved nothing")
	}

	// Second instance, same group: must pick up from the last commit.
	c2, err := kafkaclient.NewConsumer(kc, cc, quiet(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx2, stop := context.WithCancel(context.Background())
	r2 := &stage.Runner{Name: "second", Source: c2, Sink: p, Log: quiet(), DrainTimeout: 10 * time.Second,
		Handler: stage.HandlerFunc(func(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
			handled.add(batch)
			return forward(batch), nil
		})}
	done := make(chan error, 1)
	go func() { done <- r2.Run(ctx2) }()
	eventually(t, func() bool { return handled.distinct() == n })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	for _, v := range values {
		if handled.count(v) < 1 {
			t.Fatalf("%s was never processed", v)
		}
	}
	for _, m := range killed {
		if handled.count(string(m.Value)) < 2 {
			t.Fatalf("%s was in the killed batch but not delivered again", m.Value)
		}
	}

	// Every input reached the output topic, with its trace id.
	got := readAll(t, kc, out, n)
	for _, v := range values {
		if got[v] == "" {
			t.Fatalf("%s is missing from the output topic", v)
		}
		if !traceid.Valid(got[v]) {
			t.Fatalf("%s lost its trace id on the way: %q", v, got[v])
		}
	}
}

// readAll reads topic from the start until it has want distinct values and
// returns value → trace id.
func readAll(t *testing.T, kc kafkaclient.Config, topic string, want int) map[string]string {
	t.Helper()
	cc := kafkaclient.ConsumerConfig{GroupID: testinfra.Unique(t) + "-reader", BatchSize: 1000, BatchWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}
	c, err := kafkaclient.NewConsumer(kc, cc, quiet(), topic)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(got) < want {
		batch, err := c.FetchBatch(ctx)
		if err != nil {
			t.Fatalf("reading %s: %v after %d of %d values", topic, err, len(got), want)
		}
		for _, m := range batch {
			got[string(m.Value)] = kafkaclient.TraceID(m)
		}
	}
	return got
}

// eventually polls cond; one never met is caught by go test's own
// timeout rather than by a wall-clock limit here.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(20 * time.Millisecond)
	}
}

// flakySink wraps the producer: its second call writes only the first half
// of its messages and then fails (a broker that went away mid-write), and
// from call killAt on it writes half, tells the test, and blocks until its
// context ends (the process is killed while Kafka has not acknowledged the
// rest). It counts the messages that reached the topic.
type flakySink struct {
	p       *kafkaclient.Producer
	killAt  int
	blocked chan struct{}

	mu      sync.Mutex
	calls   int
	written int
}

func (s *flakySink) Produce(ctx context.Context, msgs ...kafka.Message) error {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	if call == 2 || call >= s.killAt {
		half := msgs[:len(msgs)/2]
		if err := s.p.Produce(ctx, half...); err != nil {
			return err
		}
		s.add(len(half))
		if call == 2 {
			return fmt.Errorf("broker went away after %d of %d messages", len(half), len(msgs))
		}
		if call == s.killAt {
			close(s.blocked)
		}
		<-ctx.Done()
		return ctx.Err()
	}
	if err := s.p.Produce(ctx, msgs...); err != nil {
		return err
	}
	s.add(len(msgs))
	return nil
}

func (s *flakySink) add(n int) { s.mu.Lock(); s.written += n; s.mu.Unlock() }

func (s *flakySink) total() int { s.mu.Lock(); defer s.mu.Unlock(); return s.written }

// TestPipelineFailuresLoseNothingAndKeepOrder runs the pipelined runner
// against a real broker through a partial write that fails (retried while
// the next batch is already handled) and a kill while one batch is half
// written and the next one handled; a second instance takes over. Every
// input reaches the output topic, and per key the output never runs ahead:
// a value appears only after every earlier value of its key did (a
// redelivery may repeat values, it never reorders them).
func TestPipelineFailuresLoseNothingAndKeepOrder(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	in, out := names.Raw, names.Valid
	p, err := kafkaclient.NewProducer(kc, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n, keys = 3000, 37 // produce keys value i by device-(i%37)
	values := produce(t, p, in, n)

	cc := kafkaclient.ConsumerConfig{GroupID: testinfra.Unique(t), BatchSize: 100, BatchWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}
	handled := &seen{counts: map[string]int{}}
	sink := &flakySink{p: p, killAt: 6, blocked: make(chan struct{})}
	var mu sync.Mutex
	var batches [][]kafka.Message // as handled, in order
	forward := func(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
		handled.add(batch)
		mu.Lock()
		batches = append(batches, batch)
		mu.Unlock()
		outs := make([]kafka.Message, len(batch))
		for i, m := range batch {
			outs[i] = kafka.Message{Topic: out, Key: m.Key, Value: m.Value}
		}
		return stage.Result{Outputs: outs}, nil
	}

	c1, err := kafkaclient.NewConsumer(kc, cc, quiet(), in)
	if err != nil {
		t.Fatal(err)
	}
	ctx1, kill := context.WithCancel(context.Background())
	r1 := &stage.Runner{Name: "first", Source: c1, Sink: sink, Log: quiet(), DrainTimeout: 0,
		NewBackOff: func() backoff.BackOff { return &backoff.ZeroBackOff{} }, Handler: stage.HandlerFunc(forward)}
	done := make(chan error, 1)
	go func() { done <- r1.Run(ctx1) }()
	// Call 6 writes half of the fifth batch (call 3 retried the second)
	// and hangs; the sixth batch is handled meanwhile. Then the process dies.
	<-sink.blocked
	eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) >= 6 })
	mu.Lock()
	next := batches[5]
	mu.Unlock()
	kill()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); err != nil {
		t.Logf("closing killed consumer: %v", err)
	}

	c2, err := kafkaclient.NewConsumer(kc, cc, quiet(), in)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	sink2 := &flakySink{p: p, killAt: 1 << 30}
	sink2.calls = 2 // no more failures
	ctx2, stop := context.WithCancel(context.Background())
	r2 := &stage.Runner{Name: "second", Source: c2, Sink: sink2, Log: quiet(), DrainTimeout: 10 * time.Second, Handler: stage.HandlerFunc(forward)}
	go func() { done <- r2.Run(ctx2) }()
	eventually(t, func() bool { return handled.distinct() == n })
	for _, m := range next {
		eventually(t, func() bool { return handled.count(string(m.Value)) >= 2 })
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Read back everything that was written, in partition order.
	want := sink.total() + sink2.total()
	cr, err := kafkaclient.NewConsumer(kc, kafkaclient.ConsumerConfig{GroupID: testinfra.Unique(t) + "-reader", BatchSize: 1000, BatchWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}, quiet(), out)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	rctx := context.Background()
	next2 := map[string]int{} // key → the next new index (value i is index i/keys of its key)
	got := map[string]bool{}
	for read := 0; read < want; {
		batch, err := cr.FetchBatch(rctx)
		if err != nil {
			t.Fatalf("reading %s: %v after %d of %d messages", out, err, read, want)
		}
		for _, m := range batch {
			read++
			var i int
			if _, err := fmt.Sscanf(string(m.Value), "msg-%d", &i); err != nil {
				t.Fatalf("unexpected output %q", m.Value)
			}
			k, idx := string(m.Key), i/keys
			if idx > next2[k] {
				t.Fatalf("%s (key %s) is on the output before index %d of its key: reordered", m.Value, k, next2[k])
			}
			if idx == next2[k] {
				next2[k]++
			}
			got[string(m.Value)] = true
		}
	}
	for _, v := range values {
		if !got[v] {
			t.Fatalf("%s is missing from the output topic", v)
		}
	}
	if sink.calls < 3 {
		t.Fatalf("the failing write was never retried (%d calls)", sink.calls)
	}
}
