package testinfra

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
)

// client has a transport of its own: kafka-go's shared default caches topic
// metadata for seconds, and a test's freshly created topics must be seen.
func client(kc kafkaclient.Config) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{MetadataTTL: time.Second}}
}

func partitions(ctx context.Context, t testing.TB, cl *kafka.Client, topic string) []int {
	t.Helper()
	var md *kafka.MetadataResponse
	var err error
	for attempt := 0; ; attempt++ {
		md, err = cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0 {
			break
		}
		if attempt == 50 || ctx.Err() != nil {
			if err == nil && len(md.Topics) == 1 {
				err = md.Topics[0].Error
			}
			t.Fatalf("metadata of %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ps []int
	for _, p := range md.Topics[0].Partitions {
		ps = append(ps, p.ID)
	}
	return ps
}

// endOffsets returns each partition's end offset.
func endOffsets(ctx context.Context, t testing.TB, cl *kafka.Client, topic string) map[int]int64 {
	t.Helper()
	var reqs []kafka.OffsetRequest
	for _, p := range partitions(ctx, t, cl, topic) {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	resp, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out
}

// Count is the number of messages ever written to topic (the sum of its
// partitions' end offsets; test topics are neither compacted nor trimmed).
func Count(t testing.TB, kc kafkaclient.Config, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int64
	for _, o := range endOffsets(ctx, t, client(kc), topic) {
		n += o
	}
	return n
}

// WaitCaughtUp waits until consumer group has committed every message of
// topic, i.e. a stage has processed all its input.
func WaitCaughtUp(t testing.TB, kc kafkaclient.Config, group, topic string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cl := client(kc)
	ends := endOffsets(ctx, t, cl, topic)
	ps := partitions(ctx, t, cl, topic)
	for {
		resp, err := cl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
		if err == nil && resp.Error == nil {
			committed := map[int]int64{}
			for _, p := range resp.Topics[topic] {
				if p.Error == nil {
					committed[p.Partition] = p.CommittedOffset
				}
			}
			done := true
			for p, end := range ends {
				// A group that has not committed yet reports nothing (or -1).
				if c, ok := committed[p]; end > 0 && (!ok || c < end) {
					done = false
				}
			}
			if done {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not commit all of %s within %v (ends %v)", group, topic, within, ends)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
