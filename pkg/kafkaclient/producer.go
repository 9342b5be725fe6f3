package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/traceid"
)

// Producer writes messages to any topic (each message names its own) and
// returns only after every broker replica in the ISR acknowledged them.
// It is safe for concurrent use; concurrent calls share batches.
type Producer struct {
	w *kafka.Writer
}

// NewProducer returns a synchronous acks=all producer.
func NewProducer(c Config, log *slog.Logger) (*Producer, error) {
	codec, err := c.codec()
	if err != nil {
		return nil, err
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(c.Brokers...),
		// Murmur2 is what the Java client uses for keyed messages, so
		// Firstparty and other producers agree on a key's partition.
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, // explicit: the zero value means acks=0
		Async:        false,            // errors must reach the caller
		BatchSize:    c.BatchSize,
		BatchBytes:   int64(c.BatchBytes),
		BatchTimeout: c.BatchTimeout,
		WriteTimeout: c.WriteTimeout,
		Compression:  codec,
		MaxAttempts:  3,
		Transport:    c.transport(),
		// Topics are created deliberately at start, with their partitions.
		AllowAutoTopicCreation: false,
	}
	if log != nil {
		w.ErrorLogger = kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka producer", "detail", fmt.Sprintf(msg, args...))
		})
	}
	return &Producer{w: w}, nil
}

// Produce writes msgs and waits for acks=all. It adds the trace id from ctx
// as a header to messages that carry none. On error some messages may still
// have been written: callers retry the whole set, and consumers deduplicate.
func (p *Producer) Produce(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if id := traceid.From(ctx); id != "" {
		for i := range msgs {
			if TraceID(msgs[i]) == "" {
				msgs[i].Headers = append(msgs[i].Headers, kafka.Header{Key: traceid.Header, Value: []byte(id)})
			}
		}
	}
	err := p.w.WriteMessages(ctx, msgs...)
	if err == nil {
		return nil
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		failed, first := 0, error(nil)
		for _, e := range werrs {
			if e != nil {
				failed++
				if first == nil {
					first = e
				}
			}
		}
		return fmt.Errorf("producing: %d of %d messages not acknowledged: %w", failed, len(msgs), first)
	}
	return fmt.Errorf("producing %d messages: %w", len(msgs), err)
}

// Stats exposes the writer's counters for metrics.
func (p *Producer) Stats() kafka.WriterStats { return p.w.Stats() }

// Close flushes pending writes and releases connections.
func (p *Producer) Close() error { return p.w.Close() }

// TraceID returns the trace id header of m, or "".
func TraceID(m kafka.Message) string {
	for _, h := range m.Headers {
		if h.Key == traceid.Header {
			return string(h.Value)
		}
	}
	return ""
}

// CarryTrace copies the trace id header of in onto out, so an output can be
// traced back to the input message that caused it.
func CarryTrace(out *kafka.Message, in kafka.Message) {
	if id := TraceID(in); id != "" && TraceID(*out) == "" {
		out.Headers = append(out.Headers, kafka.Header{Key: traceid.Header, Value: []byte(id)})
	}
}
