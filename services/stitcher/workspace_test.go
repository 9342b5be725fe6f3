package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
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
	a, stop := testinfra.StartService(t, "stitcher", &service{}, env)
	testinfra.WaitCaughtUp(t, kc, group, names.Valid, 60*time.Second)
	stop()

	// Under the defaults the second user id on the tablet is a blocked
	// merge: counted, announced, logged.
	if n := blockedCount(t, a.Registry, strict); n != 1 {
		t.Errorf("blocked merges counted in %s: %v, want 1", strict, n)
	}
	if n := blockedCount(t, a.Registry, lenient); n != 0 {
		t.Errorf("blocked merges counted in %s: %v, want 0", lenient, n)
	}
	changes, _ := testinfra.Read(t, kc, names.Profiles, int(testinfra.Count(t, kc, names.Profiles)), func() *profilev1.ProfileChange { return &profilev1.ProfileChange{} })
	var blocked []*profilev1.ProfileChange
	for _, c := range changes {
		if c.Kind == profilev1.ChangeKind_CHANGE_KIND_MERGE_BLOCKED {
			blocked = append(blocked, c)
		}
	}
	if len(blocked) != 1 || blocked[0].WorkspaceId != strict || blocked[0].CauseMessageId != "legacy-id" || len(blocked[0].RelatedProfileIds) != 1 ||
		!strings.Contains(blocked[0].Detail, "limit") || len(blocked[0].IdentitiesAdded) != 0 {
		t.Errorf("MERGE_BLOCKED changes = %v", blocked)
	}

	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	g := identity.New(rdb, identity.DefaultConfig())
	if log, err := g.BlockedMerges(context.Background(), strict, 10); err != nil || len(log) != 1 || log[0].Reason != identity.BlockLimit {
		t.Errorf("blocked-merge log of %s = %+v, %v", strict, log, err)
	}
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

// blockedCount sums a workspace's blocked-merge counters in reg.
func blockedCount(t *testing.T, reg *prometheus.Registry, ws string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "firstparty_stitcher_merges_blocked_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "workspace" && l.GetValue() == ws {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}
