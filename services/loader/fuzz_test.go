package main

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// FuzzConvert feeds arbitrary bytes on every topic the loader reads: it
// must never panic, and every message must become exactly one row (never
// dropped silently, never two).
func FuzzConvert(f *testing.F) {
	for _, m := range []proto.Message{
		fullEnvelope("shop", "m-1"),
		&eventv1.Rejection{Envelope: fullEnvelope("shop", "m-2"), Stage: "validator", Violations: []*eventv1.Violation{{Reason: 1}}},
		merged("c-1", "p2", []string{"p1"}, "email:a@b.c"),
		&segmentv1.Membership{MembershipId: "s", WorkspaceId: "w", SegmentId: "g", ProfileId: "p", Transition: 1},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		for topic := range 4 {
			f.Add(uint8(topic), b)
		}
	}
	f.Add(uint8(0), []byte("\xff\xff"))
	names := topics.Defaults()
	h := &handler{topics: names, now: time.Now, m: newMetrics(nil)}
	f.Fuzz(func(t *testing.T, topic uint8, value []byte) {
		msg := kafka.Message{Topic: []string{names.Resolved, names.Invalid, names.Profiles, names.Membership}[topic%4], Value: value}
		rb := h.convert([]kafka.Message{msg})
		if n := len(rb.events) + len(rb.rejected) + len(rb.changes) + len(rb.memberships); n != 1 {
			t.Fatalf("%d rows from one message on %s", n, msg.Topic)
		}
		if len(rb.changes) != len(rb.changeMsgs) {
			t.Fatalf("%d change rows but %d changes for identities", len(rb.changes), len(rb.changeMsgs))
		}
	})
}
