package kafkaclient_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// BenchmarkProduceSmallWrites is the collector's pattern: synchronous
// writes of 10 events (one request) spread over the partitions. kafka-go
// allocates room for -kafka.batch-size messages for every batch it starts
// (about 150 bytes each, zeroed), whatever the batch ends up holding, so
// the batch size sets the garbage per write (see B/op).
func BenchmarkProduceSmallWrites(b *testing.B) {
	kc := testinfra.Kafka(b)
	topic := testinfra.Topics(b, kc).Raw
	for _, size := range []int{1000, 200} {
		b.Run(fmt.Sprintf("batch-size=%d", size), func(b *testing.B) {
			c := kc
			c.BatchSize = size
			p, err := kafkaclient.NewProducer(c, quiet())
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			ctx := context.Background()
			value := make([]byte, 1200) // an envelope's size
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msgs := make([]kafka.Message, 10)
				for j := range msgs {
					msgs[j] = kafka.Message{Topic: topic, Key: []byte(fmt.Sprintf("device-%d", i*10+j)), Value: value}
				}
				if err := p.Produce(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
