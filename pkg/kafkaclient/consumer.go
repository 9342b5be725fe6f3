package kafkaclient

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/config"
)

// ConsumerConfig is one consumer group's reading behaviour.
type ConsumerConfig struct {
	GroupID   string
	BatchSize int
	BatchWait time.Duration
	// SessionTimeout bounds how long a dead instance holds its partitions.
	SessionTimeout time.Duration
	// FetchMinBytes and FetchMaxWait are the broker's side of a fetch: it
	// answers once it holds FetchMinBytes for the partition or FetchMaxWait
	// passed. A larger minimum means fewer, fuller fetches (less CPU on the
	// broker and the client) for at most FetchMaxWait more latency.
	FetchMinBytes int
	FetchMaxWait  time.Duration
	// Pipeline makes the stage runner handle the next batch while this
	// one's outputs wait for their ack (pkg/stage). Off by default: on the
	// 2-core benchmark box, where every process competes for the CPU,
	// overlapping the steps made triggers slower, not faster (README,
	// Performance); it pays where a stage waits on remote round trips.
	Pipeline bool
}

func (c *ConsumerConfig) RegisterFlags(fs *flag.FlagSet, service string) {
	fs.StringVar(&c.GroupID, "consumer.group", "firstparty-"+service, "Kafka consumer group; instances with the same group share the partitions")
	// A batch costs a stage a few fixed round trips (its Redis or
	// ClickHouse work, Kafka's ack, the offset commit), so a stage that
	// falls behind catches up faster with larger ones; a batch still closes
	// after -consumer.batch-wait, so at low rates latency is the same. On
	// the 2-core box 2,000 instead of 500 took the segmenter's trigger p99
	// at 3,000 events/s from 13–19 s to 2.3 s, and the validator and
	// stitcher from 4,422 to 4,917 messages/s at 5,000 events/s (resolved
	// p50 2.4 s → 0.57 s).
	fs.IntVar(&c.BatchSize, "consumer.batch-size", 2000, "most messages processed as one batch")
	fs.DurationVar(&c.BatchWait, "consumer.batch-wait", 20*time.Millisecond, "longest wait for a batch to fill once its first message arrived")
	fs.IntVar(&c.FetchMinBytes, "consumer.fetch-min-bytes", 1, "bytes the broker waits for (up to -consumer.fetch-max-wait) before answering a fetch of a partition")
	fs.DurationVar(&c.FetchMaxWait, "consumer.fetch-max-wait", 250*time.Millisecond, "longest the broker holds a fetch while it has less than -consumer.fetch-min-bytes")
	fs.BoolVar(&c.Pipeline, "consumer.pipeline", false, "handle the next batch while this one's outputs wait for their ack (offsets are still committed in order, only after the outputs are acknowledged), instead of finishing each batch before the next")
	fs.DurationVar(&c.SessionTimeout, "consumer.session-timeout", 10*time.Second, "group session timeout: how long a dead instance keeps its partitions")
}

func (c *ConsumerConfig) Validate() error {
	switch {
	case c.GroupID == "":
		return config.Field("consumer.group", "must not be empty")
	case c.BatchSize < 1:
		return config.Field("consumer.batch-size", "must be at least 1, got %d", c.BatchSize)
	case c.BatchWait < 0:
		return config.Field("consumer.batch-wait", "must not be negative, got %v", c.BatchWait)
	case c.SessionTimeout < time.Second:
		return config.Field("consumer.session-timeout", "must be at least 1s, got %v", c.SessionTimeout)
	case c.FetchMinBytes < 0:
		return config.Field("consumer.fetch-min-bytes", "must not be negative, got %d", c.FetchMinBytes)
	case c.FetchMaxWait < time.Millisecond:
		return config.Field("consumer.fetch-max-wait", "must be at least 1ms, got %v", c.FetchMaxWait)
	}
	return nil
}

// Consumer reads batches for a consumer group and commits only on request.
// A batch that is not committed (the process dies, the handler fails) is
// delivered again, to this instance or to whichever owns the partition after
// a rebalance: delivery is at least once, so handlers must be idempotent.
type Consumer struct {
	r   *kafka.Reader
	cfg ConsumerConfig
}

// NewConsumer joins cc.GroupID reading topics. A group that has no committed
// offset yet starts at the earliest message, so nothing produced before the
// first start is skipped.
func NewConsumer(c Config, cc ConsumerConfig, log *slog.Logger, topics ...string) (*Consumer, error) {
	if len(topics) == 0 {
		return nil, errors.New("consumer needs at least one topic")
	}
	wait := cc.FetchMaxWait
	if wait <= 0 {
		wait = 250 * time.Millisecond // a zero config (tests) gets the flag's default
	}
	rc := kafka.ReaderConfig{
		Brokers:           c.Brokers,
		GroupID:           cc.GroupID,
		GroupTopics:       topics,
		Dialer:            c.dialer(),
		MinBytes:          max(1, cc.FetchMinBytes),
		MaxBytes:          16 << 20,
		MaxWait:           wait,
		ReadBatchTimeout:  10 * time.Second,
		CommitInterval:    0, // synchronous commits: CommitMessages returns after the broker stored them
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: cc.SessionTimeout / 4,
		SessionTimeout:    cc.SessionTimeout,
		RebalanceTimeout:  cc.SessionTimeout,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		IsolationLevel:    kafka.ReadCommitted,
	}
	if log != nil {
		rc.ErrorLogger = kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka consumer", "group", cc.GroupID, "detail", fmt.Sprintf(msg, args...))
		})
	}
	return &Consumer{r: kafka.NewReader(rc), cfg: cc}, nil
}

// FetchBatch blocks until at least one message is available (or ctx ends),
// then keeps collecting until the batch is full or BatchWait has passed.
func (c *Consumer) FetchBatch(ctx context.Context) ([]kafka.Message, error) {
	first, err := c.r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := make([]kafka.Message, 1, c.cfg.BatchSize)
	batch[0] = first
	if c.cfg.BatchWait <= 0 {
		return batch, nil
	}
	fill, cancel := context.WithTimeout(ctx, c.cfg.BatchWait)
	defer cancel()
	for len(batch) < c.cfg.BatchSize {
		m, err := c.r.FetchMessage(fill)
		if err != nil {
			// The batch is whatever arrived in time. The reader keeps
			// messages it had not handed out, so nothing is skipped.
			break
		}
		batch = append(batch, m)
	}
	return batch, nil
}

// Commit stores the offsets after msgs for the group. Call it only after
// every output of msgs was acknowledged and every state write was done.
func (c *Consumer) Commit(ctx context.Context, msgs ...kafka.Message) error {
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("committing %d messages: %w", len(msgs), err)
	}
	return nil
}

// Lag is the reader's last known lag (messages behind the partition end).
func (c *Consumer) Lag() int64 { return c.r.Stats().Lag }

// Close leaves the group; uncommitted messages go to the next owner.
func (c *Consumer) Close() error { return c.r.Close() }

// Table reads a one-partition topic from its first offset without a
// consumer group and without committing: every instance reads everything,
// as a table of the latest record per key (a compacted topic such as
// cdp.config). End is the partition's end offset when the table was
// opened: a reader has caught up once it read the message before it.
type Table struct {
	r   *kafka.Reader
	end int64
}

// OpenTable looks up the end offset of partition 0 of topic and starts a
// reader at its first offset. A topic of several partitions is refused:
// a table needs one total order.
func OpenTable(ctx context.Context, c Config, topic string, log *slog.Logger) (*Table, error) {
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: c.transport()}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		if len(md.Topics) == 1 {
			err = md.Topics[0].Error
		}
		return nil, fmt.Errorf("metadata of %s: %v", topic, err)
	}
	if n := len(md.Topics[0].Partitions); n != 1 {
		return nil, fmt.Errorf("topic %s has %d partitions; a table topic has exactly one", topic, n)
	}
	resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		return nil, fmt.Errorf("end offset of %s: %w", topic, err)
	}
	ps := resp.Topics[topic]
	if len(ps) != 1 || ps[0].Error != nil {
		if len(ps) == 1 {
			err = ps[0].Error
		}
		return nil, fmt.Errorf("end offset of %s: %v", topic, err)
	}
	rc := kafka.ReaderConfig{
		Brokers: c.Brokers, Topic: topic, Partition: 0, Dialer: c.dialer(),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second,
	}
	if log != nil {
		rc.ErrorLogger = kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka table reader", "topic", topic, "detail", fmt.Sprintf(msg, args...))
		})
	}
	r := kafka.NewReader(rc)
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		r.Close()
		return nil, fmt.Errorf("reading %s from the start: %w", topic, err)
	}
	return &Table{r: r, end: ps[0].LastOffset}, nil
}

// End is the end offset when the table was opened (0: it was empty).
func (t *Table) End() int64 { return t.end }

// Read blocks until the next message (or ctx ends).
func (t *Table) Read(ctx context.Context) (kafka.Message, error) { return t.r.ReadMessage(ctx) }

// Close releases the reader.
func (t *Table) Close() error { return t.r.Close() }
