// Package kafkaclient wraps segmentio/kafka-go so that the safe thing is the
// default everywhere in Firstparty:
//
//   - the Producer writes with acks=all (a zero kafka.Writer means acks=0),
//     synchronously, and returns every error to the caller;
//   - the Consumer fetches batches with FetchMessage and commits only when the
//     caller says the batch's outputs were acknowledged (never ReadMessage,
//     which commits before processing);
//   - topics are created at start with the configured partitions and
//     replication instead of being auto-created with broker defaults.
package kafkaclient

import (
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/firstparty/firstparty/pkg/config"
)

// DefaultBrokers is where deploy/local/servers.sh starts Kafka.
const DefaultBrokers = "127.0.0.1:19092"

// Config is the Kafka part of every service's configuration.
type Config struct {
	Brokers           config.List
	ClientID          string
	Partitions        int
	ReplicationFactor int
	CreateTopics      bool
	// Producer batching: a batch is sent when it holds BatchSize messages or
	// BatchTimeout passed since its first message, whichever comes first.
	BatchSize    int
	BatchBytes   int
	BatchTimeout time.Duration
	Compression  string
	WriteTimeout time.Duration
	DialTimeout  time.Duration
}

func (c *Config) RegisterFlags(fs *flag.FlagSet, service string) {
	c.Brokers = config.List{DefaultBrokers}
	fs.Var(&c.Brokers, "kafka.brokers", "comma-separated Kafka bootstrap brokers (host:port)")
	fs.StringVar(&c.ClientID, "kafka.client-id", "firstparty-"+service, "Kafka client id")
	fs.IntVar(&c.Partitions, "kafka.partitions", 6, "partitions of each topic created at start")
	fs.IntVar(&c.ReplicationFactor, "kafka.replication-factor", 1, "replication factor of each topic created at start (3 in production)")
	fs.BoolVar(&c.CreateTopics, "kafka.create-topics", true, "create missing topics at start")
	fs.IntVar(&c.BatchSize, "kafka.batch-size", 1000, "producer: most messages in one batch per partition")
	fs.IntVar(&c.BatchBytes, "kafka.batch-bytes", 1<<20, "producer: most bytes in one request (keep below the broker's message.max.bytes)")
	fs.DurationVar(&c.BatchTimeout, "kafka.batch-timeout", time.Millisecond, "producer: longest a message waits for its batch to fill (kafka-go's default of 1s would add a second to every synchronous write; a stage hands over a whole batch at once, so waiting longer only adds latency)")
	fs.StringVar(&c.Compression, "kafka.compression", "lz4", "producer compression: none, gzip, snappy, lz4 or zstd")
	fs.DurationVar(&c.WriteTimeout, "kafka.write-timeout", 10*time.Second, "producer: how long one write may wait for the broker")
	fs.DurationVar(&c.DialTimeout, "kafka.dial-timeout", 5*time.Second, "timeout to connect to a broker")
}

func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return config.Field("kafka.brokers", "no broker given")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return config.Field("kafka.brokers", "%q is not host:port", b)
		}
	}
	switch {
	case c.Partitions < 1:
		return config.Field("kafka.partitions", "must be at least 1, got %d", c.Partitions)
	case c.ReplicationFactor < 1:
		return config.Field("kafka.replication-factor", "must be at least 1, got %d", c.ReplicationFactor)
	case c.BatchSize < 1:
		return config.Field("kafka.batch-size", "must be at least 1, got %d", c.BatchSize)
	case c.BatchBytes < 1024:
		return config.Field("kafka.batch-bytes", "must be at least 1024, got %d", c.BatchBytes)
	case c.BatchTimeout <= 0:
		return config.Field("kafka.batch-timeout", "must be positive, got %v", c.BatchTimeout)
	case c.WriteTimeout <= 0:
		return config.Field("kafka.write-timeout", "must be positive, got %v", c.WriteTimeout)
	case c.DialTimeout <= 0:
		return config.Field("kafka.dial-timeout", "must be positive, got %v", c.DialTimeout)
	}
	if _, err := c.codec(); err != nil {
		return config.Field("kafka.compression", "%v", err)
	}
	return nil
}

func (c *Config) codec() (kafka.Compression, error) {
	switch c.Compression {
	case "", "none":
		return 0, nil
	case "gzip":
		return compress.Gzip, nil
	case "snappy":
		return compress.Snappy, nil
	case "lz4":
		return compress.Lz4, nil
	case "zstd":
		return compress.Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q", c.Compression)
}

func (c *Config) transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    c.ClientID,
		DialTimeout: c.DialTimeout,
		IdleTimeout: time.Minute,
		MetadataTTL: 10 * time.Second,
	}
}

func (c *Config) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: c.ClientID, Timeout: c.DialTimeout, DualStack: true}
}
