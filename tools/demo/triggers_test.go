package main

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

func TestDecodeTrigger(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	occurred := start.Add(3 * time.Second)
	msg := func(ws string, tr segmentv1.Transition, cause string) []byte {
		b, err := proto.Marshal(&segmentv1.Membership{WorkspaceId: ws, SegmentId: "cart-left-1m", ProfileId: "p1", Transition: tr,
			OccurredAt: timestamppb.New(occurred), EvaluatedAt: timestamppb.New(occurred.Add(40 * time.Millisecond)), CauseId: cause})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	at := start.Add(3100 * time.Millisecond)
	for _, tc := range []struct {
		name  string
		value []byte
		ok    bool
		want  Trigger
	}{
		{"event enter", msg("demo", segmentv1.Transition_TRANSITION_ENTER, "event/ajs-1"), true,
			Trigger{Segment: "cart-left-1m", Enter: true, Profile: "p1", After: 3100 * time.Millisecond, Latency: 40 * time.Millisecond}},
		{"timer", msg("demo", segmentv1.Transition_TRANSITION_ENTER, "tick/timer/p1/123"), true,
			Trigger{Segment: "cart-left-1m", Enter: true, Profile: "p1", After: 3100 * time.Millisecond, Latency: 40 * time.Millisecond, Timer: true}},
		{"exit", msg("demo", segmentv1.Transition_TRANSITION_EXIT, "change/c1"), true,
			Trigger{Segment: "cart-left-1m", Profile: "p1", After: 3100 * time.Millisecond, Latency: 40 * time.Millisecond}},
		{"backfill is not a timer", msg("demo", segmentv1.Transition_TRANSITION_ENTER, "tick/backfill/x/p1"), true,
			Trigger{Segment: "cart-left-1m", Enter: true, Profile: "p1", After: 3100 * time.Millisecond, Latency: 40 * time.Millisecond}},
		{"another workspace", msg("shop", segmentv1.Transition_TRANSITION_ENTER, "event/x"), false, Trigger{}},
	} {
		got, ok, err := decodeTrigger(tc.value, "demo", start, at)
		if err != nil || ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: %+v %v %v, want %+v %v", tc.name, got, ok, err, tc.want, tc.ok)
		}
	}
	if _, _, err := decodeTrigger([]byte{0xff, 0xff}, "demo", start, at); err == nil {
		t.Error("garbage decoded")
	}
}

func TestTriggersKeepsTheNewest(t *testing.T) {
	ts := newTriggers(3)
	for i := 1; i <= 5; i++ {
		ts.add(Trigger{Segment: []string{"a", "b"}[i%2], Enter: i != 4, After: time.Duration(i) * time.Second, Timer: i == 5})
	}
	s := ts.summary()
	if s.Total != 5 || s.Timers != 1 || s.First != time.Second || len(s.Recent) != 3 || s.Recent[2].After != 5*time.Second || s.Recent[0].After != 3*time.Second {
		t.Fatalf("%+v", s)
	}
	if s.BySegment["a"] != (SegmentCount{Enter: 1, Exit: 1}) || s.BySegment["b"] != (SegmentCount{Enter: 3}) {
		t.Errorf("by segment: %+v", s.BySegment)
	}
	// A trigger at the very start still counts as arrived.
	ts = newTriggers(1)
	ts.add(Trigger{After: 0})
	if ts.summary().First == 0 {
		t.Error("a trigger at +0s reads as none")
	}
}
