// Package stage is the one skeleton every consuming stage (validator,
// stitcher, segmenter, loader) runs on:
//
//	fetch batch → handle → produce outputs (acks=all) → after-ack state writes → commit
//
// The handler decides; the runner does the I/O in that fixed order, so an
// offset is committed only when everything the batch caused is durable.
//
// Errors come in two kinds. A message that is bad is the handler's business:
// it routes it to the dead-letter topic as one more output and carries on.
// A batch-level error (Kafka, Redis or ClickHouse unavailable) makes the
// runner back off and handle the same batch again, without committing;
// handlers are therefore idempotent.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
type Runner struct {
	Name    string
	Source  Source
	Sink    Sink
	Handler Handler
	Log     *slog.Logger
	Metrics *Metrics
	// DrainTimeout is how long an in-flight batch may still take to finish
	// and commit after shutdown was requested. Zero abandons it at once
	// (it is redelivered later).
	DrainTimeout time.Duration
	// NewBackOff overrides the retry schedule (tests).
	NewBackOff func() backoff.BackOff
}

// Run fetches and processes batches until ctx is cancelled, then finishes
// the batch in flight (within DrainTimeout) and returns nil.
func (r *Runner) Run(ctx context.Context) error {
	if r.Metrics == nil {
		r.Metrics = NewMetrics(r.Name, nil)
	}
	// The next batch is fetched while this one is handled, so decoding and
	// the broker round trips of fetching overlap with the work. Fetched
	// batches not yet handled at shutdown are dropped uncommitted: they
	// are delivered again.
	batches := make(chan []kafka.Message)
	fetchCtx, stopFetching := context.WithCancel(ctx)
	fetched := make(chan struct{})
	defer func() { stopFetching(); <-fetched }()
	go func() {
		defer close(fetched)
		fetchRetry := r.backOff()
		for {
			batch, err := r.Source.FetchBatch(fetchCtx)
			if fetchCtx.Err() != nil {
				return
			}
			if err != nil {
				r.Log.Warn("fetching batch", "stage", r.Name, "err", err)
				if !sleep(fetchCtx, fetchRetry.NextBackOff()) {
					return
				}
				continue
			}
			fetchRetry.Reset()
			select {
			case batches <- batch:
			case <-fetchCtx.Done():
				return
			}
		}
	}()
	for {
		var batch []kafka.Message
		select {
		case <-ctx.Done():
			return nil // shutdown while waiting: nothing in flight
		case batch = <-batches:
		}
		r.Metrics.lag.Set(float64(r.Source.Lag()))

		// The batch in flight runs on a context that survives shutdown for
		// DrainTimeout, so SIGTERM finishes and commits it.
		procCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(ctx, func() {
			if r.DrainTimeout <= 0 {
				cancel()
				return
			}
			time.AfterFunc(r.DrainTimeout, cancel)
		})
		err := r.process(procCtx, batch)
		stop()
		cancel()
		if err != nil {
			// Only an abandoned drain gets here: the batch is not committed.
			r.Log.Warn("batch abandoned without commit; it will be redelivered", "stage", r.Name, "messages", len(batch), "err", err)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// process handles, produces, writes state and commits one batch, retrying
// transient failures until it succeeds or ctx ends.
func (r *Runner) process(ctx context.Context, batch []kafka.Message) error {
	retry := r.backOff()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := r.attempt(ctx, batch)
		r.Metrics.batchSeconds.Observe(time.Since(start).Seconds())
		if err == nil {
			r.Metrics.batches.WithLabelValues("ok").Inc()
			r.Metrics.messages.Add(float64(len(batch)))
			return nil
		}
		if ctx.Err() != nil {
			r.Metrics.batches.WithLabelValues("abandoned").Inc()
			return fmt.Errorf("%w (last error: %v)", context.Cause(ctx), err)
		}
		r.Metrics.batches.WithLabelValues("retry").Inc()
		wait := retry.NextBackOff()
		r.Log.Warn("batch failed; retrying", "stage", r.Name, "attempt", attempt, "messages", len(batch), "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return context.Cause(ctx)
		}
	}
}

func (r *Runner) attempt(ctx context.Context, batch []kafka.Message) error {
	t := time.Now()
	phase := func(name string) {
		now := time.Now()
		r.Metrics.phaseSeconds.WithLabelValues(name).Observe(now.Sub(t).Seconds())
		t = now
	}
	res, err := r.Handler.Handle(ctx, batch)
	phase("handle")
	if err != nil {
		return fmt.Errorf("handling batch: %w", err)
	}
	if len(res.Outputs) > 0 {
		if r.Sink == nil {
			return errors.New("handler returned outputs but the stage has no producer")
		}
		if err := r.Sink.Produce(ctx, res.Outputs...); err != nil {
			return err
		}
		phase("produce")
		for _, o := range res.Outputs {
			r.Metrics.outputs.WithLabelValues(o.Topic).Inc()
		}
	}
	if res.AfterAck != nil {
		if err := res.AfterAck(ctx); err != nil {
			return fmt.Errorf("writing state after ack: %w", err)
		}
		phase("after_ack")
	}
	if ctx.Err() != nil {
		return context.Cause(ctx) // abandoned: never commit what may be half done
	}
	err = r.Source.Commit(ctx, batch...)
	phase("commit")
	if err != nil {
		// Everything the batch caused is durable, so a redelivery is only
		// wasted work; the next successful commit covers these offsets.
		r.Metrics.commitErrors.Inc()
		r.Log.Warn("commit failed; batch may be redelivered", "stage", r.Name, "err", err)
	}
	return nil
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
			Name: p + "batch_duration_seconds", Help: "Time to handle, produce and commit one batch attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		phaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: p + "phase_duration_seconds", Help: "Time of each phase of a batch attempt: handle, produce, after_ack, commit.",
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
