package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
)

// benchEnvelopes returns n distinct full Segment events (about 1.3 kB each
// on the wire), encoded.
func benchEnvelopes(b *testing.B, topic string, n int) []kafka.Message {
	b.Helper()
	msgs := make([]kafka.Message, n)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range msgs {
		env := fullEnvelope("bench", fmt.Sprintf("m-%d", i))
		env.Event.AnonymousId = fmt.Sprintf("a-%d", i%5000)
		env.Event.Timestamp = tsAt(base.Add(time.Duration(i) * time.Second))
		v, err := proto.Marshal(env)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = kafka.Message{Topic: topic, Key: []byte(env.Event.AnonymousId), Value: v, Time: time.Now()}
	}
	return msgs
}

// BenchmarkConvert is the pure part: decode an Envelope and flatten it.
func BenchmarkConvert(b *testing.B) {
	names := topics.Defaults()
	msgs := benchEnvelopes(b, names.Resolved, 500)
	h := &handler{topics: names, now: time.Now, m: newMetrics(nil)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = h.convert(msgs[i%len(msgs) : i%len(msgs)+1])
	}
}

// BenchmarkHandleBatch inserts batches of full events into the real
// ClickHouse through the handler (decode, flatten, one batch insert), for
// several batch sizes: a part per insert costs the server a fixed time, so
// rows/s grows with the batch.
func BenchmarkHandleBatch(b *testing.B) {
	conn, _ := migrated(b)
	names := topics.Defaults()
	h := newHandler(conn, names, nil)
	all := benchEnvelopes(b, names.Resolved, 20000)
	for _, size := range []int{500, 5000, 20000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			msgs := all[:size]
			start := time.Now()
			for b.Loop() {
				if _, err := h.Handle(context.Background(), msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "rows/s")
		})
	}
}

// BenchmarkTopicToTable measures the whole loader: n events (b.N, at least
// 20,000 so that joining the group does not dominate) are produced to the
// resolved topic first, then a loader with the default configuration loads
// them; the time is from its start until ClickHouse holds the last one
// (group join included), and ns/op is per event.
func BenchmarkTopicToTable(b *testing.B) {
	kc := testinfra.Kafka(b)
	names := testinfra.Topics(b, kc)
	conn, cc := migrated(b)
	n := max(b.N, 20000)
	msgs := benchEnvelopes(b, names.Resolved, n)
	produce(b, kc, msgs)
	group := testinfra.Unique(b)
	b.ResetTimer()
	start := time.Now()
	run := runLoader(b, kc, cc, names, group, nil)
	// Until every row is in ClickHouse (the commit follows right after).
	for count(b, conn, "SELECT count() FROM events") < uint64(n) {
		if time.Since(start) > 10*time.Minute {
			b.Fatal("not loaded within 10 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	testinfra.WaitCaughtUp(b, kc, group, names.Resolved, time.Minute)
	run.stop()
	if got := count(b, conn, "SELECT count() FROM events FINAL"); got != uint64(n) {
		b.Fatalf("loaded %d rows, want %d", got, n)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
}
