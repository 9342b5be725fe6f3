package proto_test

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

var update = flag.Bool("update", false, "rewrite the wire golden files")

// TestWireCompatibility pins the bytes of one fully populated message of each
// topic contract. Messages already on Kafka topics (and in replays) were
// written with these field numbers and types; renumbering or retyping a field
// changes the bytes and fails here. Adding a field does not change them.
func TestWireCompatibility(t *testing.T) {
	ts := timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC))
	env := &eventv1.Envelope{
		SchemaVersion: 1, MessageId: "m", WorkspaceId: "w", SourceId: "s",
		Collector: &eventv1.CollectorMeta{ReceivedAt: ts, SentAt: ts, Ip: "1.2.3.4", UserAgent: "ua", RequestId: "r", Api: "http", Endpoint: "/v1/t"},
		Raw:       []byte(`{}`),
		Event: &eventv1.Event{
			Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: "m", AnonymousId: "a", UserId: "u", Event: "e", Name: "n", Category: "c",
			GroupId: "g", PreviousId: "p", Timestamp: ts, OriginalTimestamp: ts, SentAt: ts, ReceivedAt: ts,
			Context: &eventv1.Context{
				Ip: "ip", UserAgent: "ua", Locale: "l", Timezone: "tz", Library: &eventv1.Library{Name: "n", Version: "v"},
				Page:     &eventv1.Page{Path: "p", Referrer: "r", Search: "s", Title: "t", Url: "u"},
				Campaign: &eventv1.Campaign{Name: "n", Source: "s", Medium: "m", Term: "t", Content: "c"},
				Device:   &eventv1.Device{Id: "i", AdvertisingId: "a", Manufacturer: "m", Model: "m", Name: "n", Type: "t"},
				Os:       &eventv1.OS{Name: "n", Version: "v"}, App: &eventv1.App{Name: "n", Version: "v", Build: "b", Namespace: "ns"},
				Screen: &eventv1.Screen{Width: 1, Height: 2, Density: 3}, Consent: map[string]bool{"ads": true},
				ExternalIds: []*eventv1.ExternalID{{Id: "i", Type: "t", Collection: "c", Encoding: "e"}}, GroupId: "g",
			},
			PropertiesJson: []byte(`{"p":1}`), TraitsJson: []byte(`{"t":1}`), ContextJson: []byte(`{"c":1}`), IntegrationsJson: []byte(`{"i":1}`),
		},
		Validation: &eventv1.Validation{PlanId: "plan", PlanVersion: 2, Violations: []*eventv1.Violation{{Reason: eventv1.Reason_REASON_SCHEMA_VIOLATION, Field: "/f", Rule: "type", Detail: "d"}}},
		Resolution: &eventv1.Resolution{ProfileId: "pid", ResolvedAt: ts},
	}
	messages := map[string]proto.Message{
		"envelope":  env,
		"rejection": &eventv1.Rejection{Envelope: &eventv1.Envelope{MessageId: "m"}, Stage: "validator", Violations: []*eventv1.Violation{{Reason: eventv1.Reason_REASON_DUPLICATE}}, RejectedAt: ts},
		"profile_change": &profilev1.ProfileChange{
			ChangeId: "c", WorkspaceId: "w", ProfileId: "p", Kind: profilev1.ChangeKind_CHANGE_KIND_MERGED, OccurredAt: ts, CauseMessageId: "m",
			IdentitiesAdded: []*profilev1.Identity{{Type: "email", Value: "a@b.c"}}, RelatedProfileIds: []string{"q"},
			TraitChanges: []*profilev1.TraitChange{{Key: "k", OldValueJson: []byte(`1`), NewValueJson: []byte(`2`)}}, Version: 7, Detail: "d",
		},
		"membership": &segmentv1.Membership{MembershipId: "id", WorkspaceId: "w", SegmentId: "s", SegmentVersion: 3, ProfileId: "p",
			Transition: segmentv1.Transition_TRANSITION_EXIT, OccurredAt: ts, EvaluatedAt: ts, CauseId: "c"},
		"tick": &segmentv1.Tick{TickId: "t", WorkspaceId: "w", ProfileId: "p", Reason: segmentv1.TickReason_TICK_REASON_BACKFILL,
			DueAt: ts, SegmentId: "s", SegmentVersion: 2},
		"webhook_failure": &segmentv1.WebhookFailure{Membership: &segmentv1.Membership{MembershipId: "id"}, DestinationId: "d", Url: "https://x",
			Attempts: 8, LastStatus: 503, LastError: "e", FailedAt: ts},
	}
	for name, m := range messages {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := hex.EncodeToString(b) + "\n"
		path := filepath.Join("testdata", name+".wire.hex")
		if *update {
			_ = os.MkdirAll("testdata", 0o755)
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -update creates it)", err)
		}
		if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("%s: wire bytes changed; a field was renumbered or retyped (add fields instead; a breaking change needs a v2 package)", name)
		}
	}
}
