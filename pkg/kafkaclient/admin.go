package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Ping asks the cluster for its metadata: the broker answers, not just the port.
func Ping(ctx context.Context, c Config) error {
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: c.transport()}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return fmt.Errorf("kafka metadata from %v: %w", c.Brokers, err)
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("kafka at %v reports no brokers", c.Brokers)
	}
	return nil
}

// EnsureTopics creates the topics that do not exist yet, with c.Partitions
// and c.ReplicationFactor, and waits until each has a leader for every
// partition so the first write does not fail. Existing topics are left as
// they are (their partition count is not changed).
func EnsureTopics(ctx context.Context, c Config, topics ...string) error {
	return ensure(ctx, c, c.Partitions, nil, topics)
}

// EnsureCompacted creates topic, when missing, as a compacted topic
// (cleanup.policy=compact) of one partition and c.ReplicationFactor: a
// table of the latest record per key, read in one total order (the
// control plane's cdp.config). An existing topic must be compacted:
// anything else would delete configuration after the retention time.
func EnsureCompacted(ctx context.Context, c Config, topic string) error {
	if err := ensure(ctx, c, 1, []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}, []string{topic}); err != nil {
		return err
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: c.transport()}
	resp, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"cleanup.policy"}}}})
	if err != nil {
		return fmt.Errorf("describing topic %s: %w", topic, err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return fmt.Errorf("describing topic %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" && e.ConfigValue != "compact" {
				return fmt.Errorf("topic %s exists with cleanup.policy=%s; it must be compact (kafka-configs --alter --add-config cleanup.policy=compact)", topic, e.ConfigValue)
			}
		}
	}
	return nil
}

func ensure(ctx context.Context, c Config, partitions int, configs []kafka.ConfigEntry, topics []string) error {
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: c.transport()}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{
			Topic:             t,
			NumPartitions:     partitions,
			ReplicationFactor: c.ReplicationFactor,
			ConfigEntries:     configs,
		})
	}
	resp, err := cl.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", topics, err)
	}
	var errs []error
	for t, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("creating topic %s: %w", t, e))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return waitForLeaders(ctx, cl, topics)
}

func waitForLeaders(ctx context.Context, cl *kafka.Client, topics []string) error {
	for {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err == nil && allLed(md, len(topics)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for leaders of %v: %w", topics, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func allLed(md *kafka.MetadataResponse, want int) bool {
	if len(md.Topics) != want {
		return false
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false
			}
		}
	}
	return true
}

// DeleteTopics removes topics; tests use it to clean up after themselves.
func DeleteTopics(ctx context.Context, c Config, topics ...string) error {
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: c.DialTimeout, Transport: c.transport()}
	resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("deleting topics %v: %w", topics, err)
	}
	var errs []error
	for t, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("deleting topic %s: %w", t, e))
		}
	}
	return errors.Join(errs...)
}
