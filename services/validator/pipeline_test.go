package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/dedup"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
)

// TestDuplicateInNextBatchWhileFirstInFlight: the stage runner handles the
// next batch before the previous one's outputs are acknowledged (so before
// its dedup records are written). A duplicate in it must still be refused,
// and once the first batch is recorded the id is answered from Redis.
func TestDuplicateInNextBatchWhileFirstInFlight(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	path := filepath.Join(t.TempDir(), "workspaces.yaml")
	if err := os.WriteFile(path, []byte(workspaceYAML(ws)), 0o600); err != nil {
		t.Fatal(err)
	}
	live, err := sources.NewLive(path)
	if err != nil {
		t.Fatal(err)
	}
	names := topics.Names{Raw: "raw", Valid: "valid", Invalid: "invalid"}
	h := newHandler(names, live, dedup.New(rdb, 24*time.Hour), suppression.New(rdb), nil)
	ctx := context.Background()
	consent := map[string]bool{"analytics": true}
	msg := func(offset int64) []kafka.Message {
		return []kafka.Message{{Topic: "raw", Partition: 0, Offset: offset, Time: time.UnixMilli(1_700_000_000_000 + offset),
			Value: envelope(ws, "m-1", "track", "Product Viewed", "u1", `{}`, `{}`, consent)}}
	}
	valid := func(res []kafka.Message) int {
		n := 0
		for _, m := range res {
			if m.Topic == names.Valid {
				n++
			}
		}
		return n
	}

	first, err := h.Handle(ctx, msg(1))
	if err != nil {
		t.Fatal(err)
	}
	if valid(first.Outputs) != 1 {
		t.Fatalf("first delivery: %d valid outputs, want 1", valid(first.Outputs))
	}
	// Batch 2 is handled while batch 1 waits for its ack.
	second, err := h.Handle(ctx, msg(2))
	if err != nil {
		t.Fatal(err)
	}
	if n := valid(second.Outputs); n != 0 {
		t.Fatalf("a duplicate handled while the original was in flight passed as valid (%d outputs)", n)
	}
	if err := first.AfterAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.AfterAck(ctx); err != nil {
		t.Fatal(err)
	}
	if h.inflight.Len() != 0 {
		t.Fatalf("%d dedup ids still in flight after every batch was recorded", h.inflight.Len())
	}
	third, err := h.Handle(ctx, msg(3))
	if err != nil {
		t.Fatal(err)
	}
	if n := valid(third.Outputs); n != 0 {
		t.Fatalf("a duplicate after the original was recorded passed as valid (%d outputs)", n)
	}
	// A Kafka redelivery of the first message itself produces nothing.
	again, err := h.Handle(ctx, msg(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Outputs) != 0 {
		t.Fatalf("a redelivery produced %d outputs", len(again.Outputs))
	}
}
