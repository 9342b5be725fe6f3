package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// TestWorkspaceIdentityPolicy: each workspace resolves by its own policy.
// The same stream — one device used with two user ids and a test email —
// gives one person in a workspace that allows two user ids and blocks the
// test email, and two people under the defaults.
func TestWorkspaceIdentityPolicy(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	lenient, strict := testinfra.Unique(t)+"-lenient", testinfra.Unique(t)+"-strict"
	cfg := filepath.Join(t.TempDir(), "workspaces.yaml")
	doc := fmt.Sprintf(`workspaces:
  - {id: %s, sources: [], identity: {limits: {user_id: 2}, blocked_values: ["qa@example.com"]}}
  - {id: %s, sources: []}
`, lenient, strict)
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for _, ws := range []string{lenient, strict} {
		for i, user := range []string{"new-id", "legacy-id"} {
			v, _ := proto.Marshal(&eventv1.Envelope{SchemaVersion: 1, MessageId: user, WorkspaceId: ws, SourceId: "web",
				Event: &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, MessageId: user, AnonymousId: "tablet", UserId: user,
					TraitsJson: []byte(`{"email":"qa@example.com"}`), Timestamp: timestamppb.New(t0.Add(time.Duration(i) * time.Minute))}})
			if err := p.Produce(context.Background(), kafka.Message{Topic: names.Valid, Key: []byte("tablet"), Value: v}); err != nil {
				t.Fatal(err)
			}
		}
	}
	group := testinfra.Unique(t)
	env := testinfra.With(testinfra.TopicEnv(names), "FP_KAFKA_BROKERS", kc.Brokers.String(), "FP_REDIS_ADDR", testinfra.Redis(t).Addrs.String(),
		"FP_CONSUMER_GROUP", group, "FP_DRAIN_TIMEOUT", "5s", "FP_SOURCES_FILE", cfg)
	_, stop := testinfra.StartService(t, "stitcher", &service{}, env)
	testinfra.WaitCaughtUp(t, kc, group, names.Valid, 60*time.Second)
	stop()

	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	g := identity.New(rdb, identity.DefaultConfig())
	for ws, want := range map[string]string{
		lenient: "[anonymous_id:tablet user_id:legacy-id user_id:new-id]",
		strict:  "[anonymous_id:tablet email:qa@example.com user_id:new-id]",
	} {
		prof, err := g.Lookup(context.Background(), ws, identity.Identifier{Type: "user_id", Value: "new-id"})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(prof.Identities); got != want {
			t.Errorf("%s: identities %s, want %s", ws, got, want)
		}
	}
}
