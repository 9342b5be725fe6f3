package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// TestStreamedBatch hands the handler one batch of several blocks
// (streamChunk messages each) with rejections and undecodable messages
// spread over every block: every event lands once, as one part, and the
// rows of the other tables are collected from every block.
func TestStreamedBatch(t *testing.T) {
	conn, _ := migrated(t)
	names := topics.Defaults()
	h := newHandler(conn, names, nil)
	const events = 2*streamChunk + 517
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var batch []kafka.Message
	rejections, undecodable := 0, 0
	for i := range events {
		env := simpleEvent("shop", fmt.Sprintf("m-%d", i), "Product Viewed", fmt.Sprintf("a%d", i%300), fmt.Sprintf("p%d", i%300), base.Add(time.Duration(i)*time.Second))
		batch = append(batch, message(t, names.Resolved, env.Event.AnonymousId, env))
		switch i % 997 {
		case 5:
			batch = append(batch, message(t, names.Invalid, "k", &eventv1.Rejection{
				Envelope: &eventv1.Envelope{MessageId: fmt.Sprintf("bad-%d", i), WorkspaceId: "shop", SourceId: "web"}, Stage: "validator",
				Violations: []*eventv1.Violation{{Reason: eventv1.Reason_REASON_SCHEMA_VIOLATION, Detail: "x"}},
			}))
			rejections++
		case 9:
			batch = append(batch, kafka.Message{Topic: names.Resolved, Value: []byte{0xff, 0xff, 0xff, byte(i), byte(i >> 8)}, Time: base}) // own bytes: the rejection id
			undecodable++
		}
	}
	for range 2 { // a redelivered batch collapses
		if _, err := h.Handle(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, conn, "SELECT count() FROM events FINAL"); n != events {
		t.Errorf("events has %d rows, want %d", n, events)
	}
	if n := count(t, conn, "SELECT uniqExact(message_id) FROM events"); n != events {
		t.Errorf("%d distinct events, want %d", n, events)
	}
	if n := count(t, conn, "SELECT count() FROM rejected_events FINAL"); n != uint64(rejections+undecodable) {
		t.Errorf("rejected_events has %d rows, want %d rejections + %d undecodable", n, rejections, undecodable)
	}
	// One INSERT per Handle (the blocks squashed into a part each), not
	// one per block; merges may only lower the count.
	if n := count(t, conn, "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'events'"); n > 2 {
		t.Errorf("events has %d parts after two batches, want at most 2", n)
	}
}
