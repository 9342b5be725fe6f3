package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

func runStitcher(t *testing.T, kc kafkaclient.Config, names topics.Names, group string) (stop func()) {
	t.Helper()
	env := testinfra.With(testinfra.TopicEnv(names), "FP_KAFKA_BROKERS", kc.Brokers.String(), "FP_REDIS_ADDR", testinfra.Redis(t).Addrs.String(),
		"FP_CONSUMER_GROUP", group, "FP_DRAIN_TIMEOUT", "5s")
	_, stop = testinfra.StartService(t, "stitcher", &service{}, env)
	return stop
}

// TestTwoDevicesBecomeOneProfile streams a person's anonymous browsing on
// two devices and the logins that reveal them through the real broker and
// Redis: every event is resolved, the second login merges the devices, the
// changes say so, and a replay of the stream changes no profile.
func TestTwoDevicesBecomeOneProfile(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	ws := testinfra.Unique(t)
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	type e struct {
		id, anon, user string
		typ            eventv1.EventType
		traits         string
	}
	stream := []e{
		{"m1", "phone", "", eventv1.EventType_EVENT_TYPE_PAGE, ""},
		{"m2", "phone", "u42", eventv1.EventType_EVENT_TYPE_IDENTIFY, `{"email":"ann@x.io","plan":"free"}`},
		{"m3", "laptop", "", eventv1.EventType_EVENT_TYPE_PAGE, ""},
		{"m4", "laptop", "", eventv1.EventType_EVENT_TYPE_PAGE, ""},
		{"m5", "laptop", "u42", eventv1.EventType_EVENT_TYPE_IDENTIFY, `{"plan":"pro"}`},
	}
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i, s := range stream {
		v, _ := proto.Marshal(&eventv1.Envelope{SchemaVersion: 1, MessageId: s.id, WorkspaceId: ws, SourceId: "web",
			Event: &eventv1.Event{Type: s.typ, MessageId: s.id, AnonymousId: s.anon, UserId: s.user, TraitsJson: []byte(s.traits),
				Timestamp: timestamppb.New(t0.Add(time.Duration(i) * time.Minute))}})
		if err := p.Produce(context.Background(), kafka.Message{Topic: names.Valid, Key: []byte(s.anon), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	group := testinfra.Unique(t)
	stop := runStitcher(t, kc, names, group)
	testinfra.WaitCaughtUp(t, kc, group, names.Valid, 60*time.Second)
	stop()

	if n := testinfra.Count(t, kc, names.Resolved); n != int64(len(stream)) {
		t.Fatalf("%d resolved events, want %d", n, len(stream))
	}
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	g := identity.New(rdb, identity.DefaultConfig())
	prof, err := g.Lookup(context.Background(), ws, identity.Identifier{Type: "anonymous_id", Value: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(prof.Identities)
	if got != "[anonymous_id:laptop anonymous_id:phone email:ann@x.io user_id:u42]" {
		t.Fatalf("profile identities = %s", got)
	}
	if string(prof.Traits["plan"]) != `"pro"` || prof.Counters["page"] != 3 || prof.Counters["identify"] != 2 {
		t.Fatalf("profile = %+v", prof)
	}
	// The last event landed on the surviving profile and a merge was announced.
	resolved, _ := testinfra.Read(t, kc, names.Resolved, len(stream), func() *eventv1.Envelope { return &eventv1.Envelope{} })
	for _, r := range resolved {
		if r.Resolution.GetProfileId() == "" {
			t.Fatalf("event %s not resolved", r.MessageId)
		}
		if r.MessageId == "m5" && r.Resolution.ProfileId != prof.ID {
			t.Fatalf("m5 resolved to %s, want the survivor %s", r.Resolution.ProfileId, prof.ID)
		}
		// Only m4 (a second page view of a known device) left its profile
		// as it was; the others created one, linked, changed traits or merged.
		if want := r.MessageId == "m4"; r.Resolution.ProfileUnchanged != want {
			t.Errorf("%s: profile_unchanged = %v, want %v", r.MessageId, r.Resolution.ProfileUnchanged, want)
		}
		if r.Resolution.ProfileVersion <= 0 {
			t.Errorf("%s: profile_version %d, want the profile's version", r.MessageId, r.Resolution.ProfileVersion)
		}
	}
	// The survivor's last event carries its version now.
	for _, r := range resolved {
		if r.MessageId == "m5" && r.Resolution.ProfileVersion != prof.Version {
			t.Errorf("m5: profile_version %d, the survivor is at %d", r.Resolution.ProfileVersion, prof.Version)
		}
	}
	changes, _ := testinfra.Read(t, kc, names.Profiles, int(testinfra.Count(t, kc, names.Profiles)), func() *profilev1.ProfileChange { return &profilev1.ProfileChange{} })
	merged := false
	for _, c := range changes {
		merged = merged || c.Kind == profilev1.ChangeKind_CHANGE_KIND_MERGED && c.ProfileId == prof.ID && c.CauseMessageId == "m5"
	}
	if !merged {
		t.Fatalf("no MERGED change for the survivor among %d changes", len(changes))
	}

	// Replay from the start (lost offsets): the profile does not change.
	group2 := group + "-replay"
	stop = runStitcher(t, kc, names, group2)
	testinfra.WaitCaughtUp(t, kc, group2, names.Valid, 60*time.Second)
	stop()
	again, err := g.Lookup(context.Background(), ws, identity.Identifier{Type: "user_id", Value: "u42"})
	if err != nil || again.Version != prof.Version || again.Counters["page"] != 3 {
		t.Fatalf("replay changed the profile: %+v (was version %d)", again, prof.Version)
	}
}
