// Package stage is the one skeleton every consuming stage (validator,
// stitcher, segmenter, loader) runs on:
//
//	fetch batch → handle → produce outputs (acks=all) → after-ack state writes → commit
//
// The handler decides; the runner does the I/O in that fixed order, so an
// offset is committed only when everything the batch caused is durable.
// The steps of consecutive batches overlap (see Runner): the next batch is
// handled while this one's outputs wait for their acknowledgement.
//
// Errors come in two kinds. A message that is bad is the handler's business:
// it routes it to the dead-letter topic as one more output and carries on.
// A batch-level error from the handler (Kafka, Redis or ClickHouse
// unavailable) makes the runner back off and handle the same batch again,
// without committing; a failure to produce the outputs or to write the
// after-ack state retries those with the same outputs. Handlers are
// therefore idempotent.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Result is what a handler made of a batch.
type Result struct {
	// Outputs are produced, with acks=all, before anything else happens.
	// Each names its topic.
	Outputs []kafka.Message
	// AfterAck, if set, runs once Outputs are acknowledged and before the
	// commit: state that must only be written when the outputs are durable,
	// such as dedup records.
	AfterAck func(ctx context.Context) error
}

// Handler processes one batch. An error means "retry the whole batch".
type Handler interface {
	Handle(ctx context.Context, batch []kafka.Message) (Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, batch []kafka.Message) (Result, error)

func (f HandlerFunc) Handle(ctx context.Context, batch []kafka.Message) (Result, error) {
	return f(ctx, batch)
}

// Source is a consumer group (kafkaclient.Consumer).
type Source interface {
	FetchBatch(ctx context.Context) ([]kafka.Message, error)
	Commit(ctx context.Context, msgs ...kafka.Message) error
	Lag() int64
}

// Sink is a producer (kafkaclient.Producer).
type Sink interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// Runner runs one stage until its context ends.
//
// The runner is a pipeline of three steps connected by channels, so a
// batch's broker round trips overlap with the work on the next one:
//
//	fetch ──▶ handle ──▶ produce + AfterAck ──▶ commit
//
// While batch N's outputs wait for Kafka's acknowledgement, batch N+1 is
// handled and batch N+2 fetched; commits of batches whose outputs are
// durable are merged into one. The guarantees are those of the sequential
// loop: outputs are produced one batch at a time in fetch order (so per-key
// order holds on the output topics, also across a retry), a batch's
// AfterAck runs only after its outputs were acknowledged, and an offset is
// committed only after its batch's outputs and AfterAck, and after every
// batch before it. Handlers must therefore cope with handling batch N+1
// before batch N's outputs are acknowledged (and before its AfterAck ran):
// whatever Handle reads must already be written by the Handle before it.
type Runner struct {
	Name    string
	Source  Source
	Sink    Sink
	Handler Handler
	Log     *slog.Logger
	Metrics *Metrics
	// DrainTimeout is how long the batches in flight may still take to
	// finish and commit after shutdown was requested. Zero abandons them
	// at once (they are redelivered later).
	DrainTimeout time.Duration
	// Sequential turns the pipeline off: each batch is produced and
	// committed before the next one is handled (what services run by
	// default, see kafkaclient.ConsumerConfig.Pipeline; and what handlers
	// that read what an earlier batch's AfterAck wrote need).
	Sequential bool
	// NewBackOff overrides the retry schedule (tests).
	NewBackOff func() backoff.BackOff
}

// handled is a batch with what its handler made of it, on its way to the
// producer and the commit.
type handled struct {
	batch []kafka.Message
	res   Result
	start time.Time
}

// Run fetches and processes batches until ctx is cancelled, then finishes
// the batches in flight (within DrainTimeout) and returns nil.
func (r *Runner) Run(ctx context.Context) error {
	if r.Metrics == nil {
		r.Metrics = NewMetrics(r.Name, nil)
	}
	// The batches in flight run on a context that survives shutdown for
	// DrainTimeout, so SIGTERM finishes and commits them.
	work, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	stopDrain := context.AfterFunc(ctx, func() {
		if r.DrainTimeout <= 0 {
			abandon()
			return
		}
		time.AfterFunc(r.DrainTimeout, abandon)
	})
	defer stopDrain()

	// The next batch is fetched while this one is handled. Fetched
	// batches not yet handled at shutdown are dropped uncommitted: they
	// are delivered again.
	batches := make(chan []kafka.Message)
	fetchCtx, stopFetching := context.WithCancel(ctx)
	fetched := make(chan struct{})
	defer func() { stopFetching(); <-fetched }()
	go func() {
		defer close(fetched)
		r.fetch(fetchCtx, batches)
	}()

	// Handled batches go to the producer one at a time (unbuffered: at
	// most one batch waits handled while another is being produced);
	// produced ones queue for the committer, which merges what piled up.
	toProduce := make(chan handled)
	toCommit := make(chan handled, 64)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer close(toCommit); r.produceLoop(work, toProduce, toCommit) }()
	go func() { defer wg.Done(); r.commitLoop(work, toCommit) }()
	defer wg.Wait()
	defer close(toProduce)

	for {
		var batch []kafka.Message
		select {
		case <-ctx.Done():
			return nil // shutdown while waiting: the batches in flight drain
		case batch = <-batches:
		}
		r.Metrics.lag.Set(float64(r.Source.Lag()))
		h := handled{batch: batch, start: time.Now()}
		res, err := r.handle(work, batch)
		if err != nil {
			// Only an abandoned drain gets here: the batch is not committed.
			r.Log.Warn("batch abandoned without commit; it will be redelivered", "stage", r.Name, "messages", len(batch), "err", err)
			return nil
		}
		h.res = res
		if r.Sequential {
			err = r.deliver(work, h)
			if err == nil {
				r.commit(work, []handled{h})
			}
		} else {
			toProduce <- h
		}
		if err != nil {
			r.Log.Warn("batch abandoned without commit; it will be redelivered", "stage", r.Name, "messages", len(batch), "err", err)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// fetch reads batches into out until ctx ends, backing off on errors.
func (r *Runner) fetch(ctx context.Context, out chan<- []kafka.Message) {
	retry := r.backOff()
	for {
		batch, err := r.Source.FetchBatch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.Log.Warn("fetching batch", "stage", r.Name, "err", err)
			if !sleep(ctx, retry.NextBackOff()) {
				return
			}
			continue
		}
		retry.Reset()
		select {
		case out <- batch:
		case <-ctx.Done():
			return
		}
	}
}

// produceLoop delivers handled batches in order and passes them on to be
// committed. Once one is abandoned (the drain ran out), the rest are only
// drained from the channel: nothing after a batch that was not delivered
// may be committed.
func (r *Runner) produceLoop(ctx context.Context, in <-chan handled, out chan<- handled) {
	failed := false
	for h := range in {
		if failed {
			continue
		}
		if err := r.deliver(ctx, h); err != nil {
			r.Log.Warn("batch abandoned without commit; it will be redelivered", "stage", r.Name, "messages", len(h.batch), "err", err)
			failed = true
			continue
		}
		out <- h
	}
}

// commitLoop commits delivered batches, merging those that queued up
// while the previous commit was on its way into one commit.
func (r *Runner) commitLoop(ctx context.Context, in <-chan handled) {
	for h := range in {
		hs := []handled{h}
	more:
		for {
			select {
			case h, ok := <-in:
				if !ok {
					break more
				}
				hs = append(hs, h)
			default:
				break more
			}
		}
		r.commit(ctx, hs)
	}
}

// handle runs the handler on batch, retrying transient failures until it
// succeeds or ctx ends.
func (r *Runner) handle(ctx context.Context, batch []kafka.Message) (Result, error) {
	return retrying(ctx, r, len(batch), func() (Result, error) {
		start := time.Now()
		res, err := r.Handler.Handle(ctx, batch)
		r.Metrics.phaseSeconds.WithLabelValues("handle").Observe(time.Since(start).Seconds())
		if err != nil {
			return Result{}, fmt.Errorf("handling batch: %w", err)
		}
		return res, nil
	})
}

// deliver produces a handled batch's outputs (acks=all) and then runs its
// AfterAck, retrying both until they succeed or ctx ends. A retry sends
// the same outputs again (consumers deduplicate): handling the batch again
// would make the same ones, since handlers are idempotent.
func (r *Runner) deliver(ctx context.Context, h handled) error {
	_, err := retrying(ctx, r, len(h.batch), func() (struct{}, error) {
		t := time.Now()
		phase := func(name string) {
			now := time.Now()
			r.Metrics.phaseSeconds.WithLabelValues(name).Observe(now.Sub(t).Seconds())
			t = now
		}
		if len(h.res.Outputs) > 0 {
			if r.Sink == nil {
				return struct{}{}, errors.New("handler returned outputs but the stage has no producer")
			}
			if err := r.Sink.Produce(ctx, h.res.Outputs...); err != nil {
				return struct{}{}, err
			}
			phase("produce")
		}
		if h.res.AfterAck != nil {
			if err := h.res.AfterAck(ctx); err != nil {
				return struct{}{}, fmt.Errorf("writing state after ack: %w", err)
			}
			phase("after_ack")
		}
		return struct{}{}, nil
	})
	if err != nil {
		return err
	}
	for _, o := range h.res.Outputs {
		r.Metrics.outputs.WithLabelValues(o.Topic).Inc()
	}
	return nil
}

// commit stores the offsets after the delivered batches hs, in one call.
func (r *Runner) commit(ctx context.Context, hs []handled) {
	var msgs []kafka.Message
	if len(hs) == 1 {
		msgs = hs[0].batch
	} else {
		for _, h := range hs {
			msgs = append(msgs, h.batch...)
		}
	}
	start := time.Now()
	if ctx.Err() != nil {
		r.Metrics.batches.WithLabelValues("abandoned").Add(float64(len(hs)))
		return // abandoned: redelivered, the outputs deduplicated
	}
	err := r.Source.Commit(ctx, msgs...)
	now := time.Now()
	r.Metrics.phaseSeconds.WithLabelValues("commit").Observe(now.Sub(start).Seconds())
	if err != nil {
		// Everything the batches caused is durable, so a redelivery is only
		// wasted work; the next successful commit covers these offsets.
		r.Metrics.commitErrors.Inc()
		r.Log.Warn("commit failed; batch may be redelivered", "stage", r.Name, "err", err)
	}
	for _, h := range hs {
		r.Metrics.batchSeconds.Observe(now.Sub(h.start).Seconds())
		r.Metrics.batches.WithLabelValues("ok").Inc()
		r.Metrics.messages.Add(float64(len(h.batch)))
	}
}

// retrying runs op until it succeeds, backing off between attempts, or
// until ctx ends (then it returns why, with op's last error).
func retrying[T any](ctx context.Context, r *Runner, messages int, op func() (T, error)) (T, error) {
	retry := r.backOff()
	for attempt := 1; ; attempt++ {
		v, err := op()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			r.Metrics.batches.WithLabelValues("abandoned").Inc()
			return v, fmt.Errorf("%w (last error: %v)", context.Cause(ctx), err)
		}
		r.Metrics.batches.WithLabelValues("retry").Inc()
		wait := retry.NextBackOff()
		r.Log.Warn("batch failed; retrying", "stage", r.Name, "attempt", attempt, "messages", messages, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			r.Metrics.batches.WithLabelValues("abandoned").Inc()
			return v, context.Cause(ctx)
		}
	}
}

func (r *Runner) backOff() backoff.BackOff {
	if r.NewBackOff != nil {
		return r.NewBackOff()
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = 0 // a stage never gives up on a transient failure
	return b
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Metrics are one stage's runner metrics.
type Metrics struct {
	batches      *prometheus.CounterVec
	messages     prometheus.Counter
	outputs      *prometheus.CounterVec
	commitErrors prometheus.Counter
	batchSeconds prometheus.Histogram
	phaseSeconds *prometheus.HistogramVec
	lag          prometheus.Gauge
}

// NewMetrics creates the metrics of stage name and registers them with reg
// (nil: not registered).
func NewMetrics(name string, reg prometheus.Registerer) *Metrics {
	p := "firstparty_" + name + "_"
	m := &Metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: p + "batches_total", Help: "Batches by outcome: ok, retry (transient failure), abandoned (shutdown).",
		}, []string{"outcome"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: p + "messages_committed_total", Help: "Input messages fully processed and committed.",
		}),
		outputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: p + "outputs_total", Help: "Messages produced, by topic.",
		}, []string{"topic"}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: p + "commit_errors_total", Help: "Offset commits that failed (the batch may be redelivered).",
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: p + "batch_duration_seconds", Help: "Time from handling a batch to its commit (retries and waits in the pipeline included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: p + "phase_duration_seconds", Help: "Time of each phase attempt: handle, produce, after_ack, commit (one commit may cover several batches).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"phase"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: p + "consumer_lag", Help: "Messages behind the end of the partitions, as last seen.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.batches, m.messages, m.outputs, m.commitErrors, m.batchSeconds, m.phaseSeconds, m.lag)
	}
	return m
}
