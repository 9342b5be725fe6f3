package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

var loadTime = time.Date(2026, 3, 14, 16, 0, 0, 123e6, time.UTC)

func TestEventRowFlattensEveryField(t *testing.T) {
	got, err := newEventRow(fullEnvelope("shop", "m-1"), meta{traceID: "tr-1", loadedAt: loadTime, msgTime: loadTime})
	if err != nil {
		t.Fatal(err)
	}
	want := wantFullRow("shop", "m-1", "tr-1")
	want.LoadedAt = loadTime.Truncate(time.Second)
	for _, d := range diffFields(want, got) {
		t.Error(d)
	}
}

func TestEventRowTimes(t *testing.T) {
	msgTime := time.Date(2026, 3, 15, 1, 2, 3, 4e6, time.UTC)
	for _, tc := range []struct {
		name   string
		edit   func(*eventv1.Envelope)
		want   time.Time
		wantMs uint16
	}{
		{"event time", func(*eventv1.Envelope) {}, utc("2026-03-14T15:09:26Z"), 535},
		{"no timestamp: received_at", func(e *eventv1.Envelope) { e.Event.Timestamp = nil }, utc("2026-03-14T15:09:27Z"), 635},
		{"no event times: collector's", func(e *eventv1.Envelope) { e.Event.Timestamp, e.Event.ReceivedAt = nil, nil }, utc("2026-03-14T15:09:27Z"), 635},
		{"no time at all: Kafka's", func(e *eventv1.Envelope) { e.Event.Timestamp, e.Event.ReceivedAt, e.Collector = nil, nil, nil }, utc("2026-03-15T01:02:03Z"), 4},
		{"before 1970: clamped", func(e *eventv1.Envelope) { e.Event.Timestamp = ts("1969-12-31T23:59:59.5Z") }, time.Unix(0, 0), 0},
		{"after 2106: clamped", func(e *eventv1.Envelope) { e.Event.Timestamp = ts("2200-01-01T00:00:00Z") }, time.Unix(maxDateTime, 0), 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := fullEnvelope("shop", "m-1")
			tc.edit(env)
			r, err := newEventRow(env, meta{loadedAt: loadTime, msgTime: msgTime})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Timestamp.Equal(tc.want) || r.TimestampMs != tc.wantMs {
				t.Errorf("timestamp = %v + %d ms, want %v + %d ms", r.Timestamp, r.TimestampMs, tc.want, tc.wantMs)
			}
		})
	}
}

func TestEventRowNeedsIds(t *testing.T) {
	for name, edit := range map[string]func(*eventv1.Envelope){
		"no workspace":  func(e *eventv1.Envelope) { e.WorkspaceId = "" },
		"no message id": func(e *eventv1.Envelope) { e.MessageId = "" },
		"no event":      func(e *eventv1.Envelope) { e.Event = nil },
	} {
		env := fullEnvelope("shop", "m-1")
		edit(env)
		if _, err := newEventRow(env, meta{}); !errors.Is(err, errIncomplete) {
			t.Errorf("%s: err = %v, want errIncomplete", name, err)
		}
	}
	// A minimal event (no context, no resolution) loads with empty columns.
	r, err := newEventRow(&eventv1.Envelope{MessageId: "m", WorkspaceId: "w", Event: &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_PAGE}}, meta{msgTime: loadTime})
	if err != nil || r.Type != "page" || r.ProfileID != "" || r.Version != 0 || !r.Timestamp.Equal(loadTime.Truncate(time.Second)) {
		t.Fatalf("minimal event: %+v, %v", r, err)
	}
}

func TestRejectedRow(t *testing.T) {
	env := fullEnvelope("shop", "m-1")
	rej := &eventv1.Rejection{Envelope: env, Stage: "validator", RejectedAt: ts("2026-03-14T15:10:00.25Z"), Violations: []*eventv1.Violation{
		{Reason: eventv1.Reason_REASON_SCHEMA_VIOLATION, Field: "/properties/revenue", Rule: "type", Detail: "want number"},
		{Reason: eventv1.Reason_REASON_UNPLANNED, Detail: "not in plan"},
	}}
	r := newRejectedRow(rej, []byte("bytes"), "t/1/2", meta{traceID: "tr", loadedAt: loadTime})
	want := rejectedRow{
		RejectionID: digest([]byte("bytes")), WorkspaceID: "shop", SourceID: "web", MessageID: "m-1", Stage: "validator",
		Reason: "schema_violation", Field: "/properties/revenue", Rule: "type", Detail: "want number",
		Reasons: []string{"schema_violation", "unplanned"}, Fields: []string{"/properties/revenue", ""},
		Rules: []string{"type", ""}, Details: []string{"want number", "not in plan"}, Violations: 2,
		Type: "track", Event: "Order Completed", AnonymousID: "anon-1", UserID: "user-1",
		ReceivedAt: utc("2026-03-14T15:09:27Z"), RejectedAt: utc("2026-03-14T15:10:00Z"), RejectedAtMs: 250,
		Raw: `{"type":"track"}`, Origin: "t/1/2", TraceID: "tr", LoadedAt: loadTime.Truncate(time.Second),
		Version: uint64(utc("2026-03-14T15:10:00Z").UnixMilli() + 250),
	}
	for _, d := range diffFields(want, r) {
		t.Error(d)
	}
	// A rejection of a request the collector could not parse has no envelope fields.
	empty := newRejectedRow(&eventv1.Rejection{Stage: "collector"}, []byte("x"), "", meta{msgTime: loadTime})
	if empty.Reason != "" || len(empty.Reasons) != 0 || empty.Reasons == nil || !empty.RejectedAt.Equal(loadTime.Truncate(time.Second)) {
		t.Errorf("empty rejection: %+v", empty)
	}
}

func TestUndecodableRow(t *testing.T) {
	msg := kafka.Message{Topic: "cdp.events.resolved", Partition: 2, Offset: 7, Value: []byte("\xff\xfenot protobuf")}
	r := newUndecodableRow(msg, errors.New("proto: cannot parse"), [3]string{}, meta{traceID: "tr", loadedAt: loadTime, msgTime: loadTime})
	if r.Stage != "loader" || r.Reason != "format_violation" || !slices.Equal(r.Reasons, []string{"format_violation"}) ||
		r.Origin != "cdp.events.resolved/2/7" || r.Raw != string(msg.Value) || !strings.Contains(r.Detail, "cannot parse") || r.Violations != 1 {
		t.Errorf("undecodable row: %+v", r)
	}
	// The same bytes on the same topic are the same rejection (a redelivery
	// collapses); on another topic they are another.
	again := newUndecodableRow(kafka.Message{Topic: msg.Topic, Offset: 9, Value: msg.Value}, errors.New("x"), [3]string{}, meta{})
	other := newUndecodableRow(kafka.Message{Topic: "cdp.events.invalid", Value: msg.Value}, errors.New("x"), [3]string{}, meta{})
	if again.RejectionID != r.RejectionID || other.RejectionID == r.RejectionID {
		t.Errorf("rejection ids: %s %s %s", r.RejectionID, again.RejectionID, other.RejectionID)
	}
	big := newUndecodableRow(kafka.Message{Value: make([]byte, maxRaw+10)}, errors.New("x"), [3]string{}, meta{})
	if len(big.Raw) != maxRaw {
		t.Errorf("raw kept %d bytes, want at most %d", len(big.Raw), maxRaw)
	}
}

func TestProfileChangeRow(t *testing.T) {
	c := &profilev1.ProfileChange{
		ChangeId: "c-1", WorkspaceId: "shop", ProfileId: "p-2", Kind: profilev1.ChangeKind_CHANGE_KIND_MERGED,
		OccurredAt: ts("2026-03-14T15:09:26.535Z"), CauseMessageId: "m-1",
		IdentitiesAdded:   []*profilev1.Identity{{Type: "email", Value: "ann@example.com"}, {Type: "user_id", Value: "u-1"}},
		RelatedProfileIds: []string{"p-1"},
		TraitChanges:      []*profilev1.TraitChange{{Key: "plan", NewValueJson: []byte(`"pro"`)}, {Key: "age", OldValueJson: []byte(`41`), NewValueJson: []byte(`42`)}},
		Version:           7, Detail: "",
	}
	r, err := newProfileChangeRow(c, meta{traceID: "tr", loadedAt: loadTime})
	if err != nil {
		t.Fatal(err)
	}
	want := profileChangeRow{
		ChangeID: "c-1", WorkspaceID: "shop", ProfileID: "p-2", Kind: "merged",
		OccurredAt: utc("2026-03-14T15:09:26Z"), OccurredAtMs: 535, CauseMessageID: "m-1",
		IdentityTypes: []string{"email", "user_id"}, IdentityValues: []string{"ann@example.com", "u-1"},
		RelatedProfileIDs: []string{"p-1"},
		TraitKeys:         []string{"plan", "age"}, TraitOldValues: []string{"", "41"}, TraitNewValues: []string{`"pro"`, "42"},
		TraceID: "tr", LoadedAt: loadTime.Truncate(time.Second), Version: 7,
	}
	for _, d := range diffFields(want, r) {
		t.Error(d)
	}
	if _, err := newProfileChangeRow(&profilev1.ProfileChange{WorkspaceId: "w", ProfileId: "p"}, meta{}); !errors.Is(err, errIncomplete) {
		t.Errorf("change without id: %v", err)
	}
}

func TestMembershipRow(t *testing.T) {
	s := &segmentv1.Membership{
		MembershipId: "s-1", WorkspaceId: "shop", SegmentId: "cart-abandoners", SegmentVersion: 2, ProfileId: "p-1",
		Transition: segmentv1.Transition_TRANSITION_EXIT, OccurredAt: ts("2026-03-14T15:09:26.535Z"),
		EvaluatedAt: ts("2026-03-14T15:09:27.001Z"), CauseId: "m-9",
	}
	r, err := newMembershipRow(s, meta{traceID: "tr", loadedAt: loadTime})
	if err != nil {
		t.Fatal(err)
	}
	want := membershipRow{
		MembershipID: "s-1", WorkspaceID: "shop", SegmentID: "cart-abandoners", SegmentVersion: 2, ProfileID: "p-1",
		Transition: "exit", OccurredAt: utc("2026-03-14T15:09:26Z"), OccurredAtMs: 535,
		EvaluatedAt: utc("2026-03-14T15:09:27Z"), EvaluatedAtMs: 1, CauseID: "m-9",
		TraceID: "tr", LoadedAt: loadTime.Truncate(time.Second), Version: uint64(utc("2026-03-14T15:09:27Z").UnixMilli() + 1),
	}
	for _, d := range diffFields(want, r) {
		t.Error(d)
	}
	if _, err := newMembershipRow(&segmentv1.Membership{MembershipId: "x", WorkspaceId: "w"}, meta{}); !errors.Is(err, errIncomplete) {
		t.Errorf("membership without segment: %v", err)
	}
}

func TestColumnLists(t *testing.T) {
	for _, tb := range loadedTables {
		seen := map[string]bool{}
		for _, c := range tb.columns {
			if seen[c] {
				t.Errorf("%s: column %s twice", tb.name, c)
			}
			seen[c] = true
		}
		if !seen["workspace_id"] || !seen["version"] {
			t.Errorf("%s: columns %v lack workspace_id or version", tb.name, tb.columns)
		}
	}
	if got := eventsTable.insertSQL(); !strings.HasPrefix(got, "INSERT INTO events (workspace_id, source_id, message_id, ") {
		t.Errorf("insert statement %q", got)
	}
}
