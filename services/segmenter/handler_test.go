package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// A batch redelivered because Kafka never acknowledged its transitions
// sends them again before the transitions of the inputs that follow: a
// profile's enters and exits reach consumers in the order they happened.
func TestRedeliveredTransitionsComeFirst(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ctx := context.Background()
	ws := testinfra.Unique(t)
	defer testinfra.DropRedisKeys(t, rdb, identity.Prefix(ws)+"*")
	reg, err := sources.Parse([]byte("workspaces:\n  - id: " + ws + "\n    sources: []\n    segments:\n" +
		`      - {id: toggle, version: 1, name: T, condition: 'toggles % 2 == 1', aggregates: {toggles: {count: {event: "Toggle"}}}}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	names := topics.Names{Resolved: "t.resolved", Profiles: "t.profiles", Timers: "t.timers", Membership: "t.membership", Invalid: "t.invalid"}
	h := &handler{topics: names, reg: func() *sources.Registry { return reg }, graph: identity.New(rdb, identity.DefaultConfig()),
		store: segstate.New(rdb), shards: 2, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler), metrics: newMetrics(nil)}
	toggle := func(offset int64) kafka.Message {
		env := &eventv1.Envelope{SchemaVersion: 1, MessageId: "m" + string(rune('0'+offset)), WorkspaceId: ws, SourceId: "web",
			Event:      &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: "Toggle", Timestamp: timestamppb.New(now)},
			Resolution: &eventv1.Resolution{ProfileId: "p1", ResolvedAt: timestamppb.New(now), ProfileUnchanged: true}}
		v, _ := proto.Marshal(env)
		return kafka.Message{Topic: names.Resolved, Partition: 0, Offset: offset, Key: []byte("p1"), Value: v}
	}
	// The first toggle enters; its output is never acknowledged (no AfterAck).
	res, err := h.Handle(ctx, []kafka.Message{toggle(1)})
	if err != nil || len(res.Outputs) != 1 {
		t.Fatalf("first batch: %d outputs, %v", len(res.Outputs), err)
	}
	// Redelivered together with the next toggle, which exits.
	res, err = h.Handle(ctx, []kafka.Message{toggle(1), toggle(2)})
	if err != nil {
		t.Fatal(err)
	}
	var got []segmentv1.Transition
	for _, o := range res.Outputs {
		m := &segmentv1.Membership{}
		if err := proto.Unmarshal(o.Value, m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Transition)
	}
	want := []segmentv1.Transition{segmentv1.Transition_TRANSITION_ENTER, segmentv1.Transition_TRANSITION_EXIT}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("transitions %v, want %v (the re-sent enter first)", got, want)
	}
}
