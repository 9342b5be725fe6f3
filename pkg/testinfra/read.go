package testinfra

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
)

// Read returns the first n messages of topic (from the start, in a consumer
// group of its own), decoded with newT, and their keys. It fails the test
// when they do not arrive within 30 s or a message is not a T.
func Read[T proto.Message](t testing.TB, kc kafkaclient.Config, topic string, n int, newT func() T) ([]T, [][]byte) {
	t.Helper()
	cc := kafkaclient.ConsumerConfig{GroupID: Unique(t) + "-read", BatchSize: 1000, BatchWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}
	c, err := kafkaclient.NewConsumer(kc, cc, nil, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []T
	var keys [][]byte
	for len(out) < n {
		batch, err := c.FetchBatch(ctx)
		if err != nil {
			t.Fatalf("reading %s: got %d of %d messages: %v", topic, len(out), n, err)
		}
		for _, m := range batch {
			v := newT()
			if err := proto.Unmarshal(m.Value, v); err != nil {
				t.Fatalf("message on %s is not a %T: %v", topic, v, err)
			}
			out = append(out, v)
			keys = append(keys, m.Key)
		}
	}
	return out, keys
}
