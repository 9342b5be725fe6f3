package main

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/stage"
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

// A backfill tick sent by an instance that has a new segment version
// waits until this instance's configuration has it too, instead of being
// spent on the version before (which would leave profiles without events
// out of the new version for good); after -backfill.config-wait it is
// handled under what there is, and counted.
func TestBackfillTickWaitsForItsVersion(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ctx := context.Background()
	ws := testinfra.Unique(t)
	defer testinfra.DropRedisKeys(t, rdb, identity.Prefix(ws)+"*")
	version := func(v int, cond string) *sources.Registry {
		reg, err := sources.Parse([]byte("workspaces:\n  - id: " + ws + "\n    sources: []\n    segments:\n" +
			"      - {id: all, version: " + strconv.Itoa(v) + ", name: All, condition: '" + cond + "'}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	var current atomic.Pointer[sources.Registry]
	current.Store(version(1, "false"))
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	names := topics.Names{Resolved: "t.resolved", Profiles: "t.profiles", Timers: "t.timers", Membership: "t.membership", Invalid: "t.invalid"}
	m := newMetrics(nil)
	h := &handler{topics: names, reg: current.Load, graph: identity.New(rdb, identity.DefaultConfig()), store: segstate.New(rdb), shards: 1,
		configWait: 10 * time.Second, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler), metrics: m}
	tick := func(pid string, offset int64) kafka.Message {
		v, _ := proto.Marshal(&segmentv1.Tick{TickId: "backfill/all@2/" + pid, WorkspaceId: ws, ProfileId: pid,
			Reason: segmentv1.TickReason_TICK_REASON_BACKFILL, SegmentId: "all", SegmentVersion: 2})
		return kafka.Message{Topic: names.Timers, Partition: 0, Offset: offset, Key: []byte(pid), Value: v}
	}
	enters := func(res stage.Result) []uint32 {
		var out []uint32
		for _, o := range res.Outputs {
			ms := &segmentv1.Membership{}
			if err := proto.Unmarshal(o.Value, ms); err != nil {
				t.Fatal(err)
			}
			if ms.Transition == segmentv1.Transition_TRANSITION_ENTER {
				out = append(out, ms.SegmentVersion)
			}
		}
		return out
	}

	// Version 2 ("everyone") reaches this instance while the tick waits.
	go func() { time.Sleep(300 * time.Millisecond); current.Store(version(2, "true")) }()
	res, err := h.Handle(ctx, []kafka.Message{tick("p1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := enters(res); len(got) != 1 || got[0] != 2 {
		t.Fatalf("enters %v, want one into version 2", got)
	}

	// A version that never comes: handled under the one in force once
	// the wait is over, and counted.
	h.configWait = 200 * time.Millisecond
	v3, _ := proto.Marshal(&segmentv1.Tick{TickId: "backfill/all@3/p2", WorkspaceId: ws, ProfileId: "p2",
		Reason: segmentv1.TickReason_TICK_REASON_BACKFILL, SegmentId: "all", SegmentVersion: 3})
	res, err = h.Handle(ctx, []kafka.Message{{Topic: names.Timers, Partition: 0, Offset: 2, Key: []byte("p2"), Value: v3}})
	if err != nil {
		t.Fatal(err)
	}
	if got := enters(res); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after the wait: enters %v, want one into version 2 (the one in force)", got)
	}
	if n := testutil.ToFloat64(m.staleTicks); n != 1 {
		t.Fatalf("stale ticks counted %v, want 1", n)
	}
	// The rest of that version's ticks (a deleted segment's, say) are not
	// waited for again: they would hold every batch they are in.
	h.configWait = time.Hour
	v3b, _ := proto.Marshal(&segmentv1.Tick{TickId: "backfill/all@3/p3", WorkspaceId: ws, ProfileId: "p3",
		Reason: segmentv1.TickReason_TICK_REASON_BACKFILL, SegmentId: "all", SegmentVersion: 3})
	done := make(chan error, 1)
	go func() {
		_, err := h.Handle(ctx, []kafka.Message{{Topic: names.Timers, Partition: 0, Offset: 3, Key: []byte("p3"), Value: v3b}})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a tick of a version already given up on was waited for again")
	}
	if n := testutil.ToFloat64(m.staleTicks); n != 2 {
		t.Fatalf("stale ticks counted %v, want 2", n)
	}
}
