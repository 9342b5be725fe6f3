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

	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

func workspaceYAML(ws string) string {
	return fmt.Sprintf(`
workspaces:
  - id: %s
    consent: {required: [analytics]}
    sources:
      - id: web
        write_keys: [wk_validator_test_0123456789]
        default_region: DE
        tracking_plan:
          id: shop
          version: 1
          violations: block
          unplanned: allow
          events:
            Order Completed:
              properties: {type: object, required: [order_id], properties: {revenue: {type: number}}}
`, ws)
}

// runValidator runs the validator in-process with its own consumer group
// until the returned stop is called.
func runValidator(t *testing.T, kc kafkaclient.Config, names topics.Names, sourcesFile, group string) (stop func()) {
	t.Helper()
	env := testinfra.With(testinfra.TopicEnv(names), "FP_KAFKA_BROKERS", kc.Brokers.String(), "FP_REDIS_ADDR", testinfra.Redis(t).Addrs.String(),
		"FP_SOURCES_FILE", sourcesFile, "FP_CONSUMER_GROUP", group, "FP_DRAIN_TIMEOUT", "5s")
	_, stop = testinfra.StartService(t, "validator", &service{}, env)
	return stop
}

func envelope(ws, id, typ, event, user, props, traits string, consent map[string]bool) []byte {
	t := map[string]eventv1.EventType{"track": eventv1.EventType_EVENT_TYPE_TRACK, "identify": eventv1.EventType_EVENT_TYPE_IDENTIFY}[typ]
	b, _ := proto.Marshal(&eventv1.Envelope{
		SchemaVersion: 1, MessageId: id, WorkspaceId: ws, SourceId: "web", Raw: []byte(`{}`),
		Event: &eventv1.Event{Type: t, MessageId: id, Event: event, UserId: user, AnonymousId: "dev-" + user,
			PropertiesJson: []byte(props), TraitsJson: []byte(traits), Context: &eventv1.Context{Consent: consent}},
	})
	return b
}

// TestMixedStreamExactCounts sends good, schema-violating, consent-less,
// duplicate, undecodable and suppressed events through the real broker and
// Redis, checks the exact counts and reasons on the valid and invalid
// topics, then replays the whole raw topic through a second instance (as
// after lost offsets) and checks that nothing changed.
func TestMixedStreamExactCounts(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	ws := testinfra.Unique(t)
	path := filepath.Join(t.TempDir(), "sources.yaml")
	if err := os.WriteFile(path, []byte(workspaceYAML(ws)), 0o600); err != nil {
		t.Fatal(err)
	}
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	if err := suppression.New(rdb).Add(context.Background(), ws, suppression.Identifier{Type: "email", Value: "erased@example.com"}); err != nil {
		t.Fatal(err)
	}

	yes := map[string]bool{"analytics": true}
	var raw [][]byte
	for i := 0; i < 10; i++ {
		raw = append(raw, envelope(ws, fmt.Sprintf("good-%d", i), "track", "Order Completed", fmt.Sprintf("u%d", i), fmt.Sprintf(`{"order_id":"o%d","revenue":%d}`, i, i), "", yes))
	}
	for i := 0; i < 3; i++ {
		raw = append(raw, envelope(ws, fmt.Sprintf("schema-%d", i), "track", "Order Completed", "u1", `{"revenue":"lots"}`, "", yes))
	}
	for i := 0; i < 2; i++ {
		raw = append(raw, envelope(ws, fmt.Sprintf("noconsent-%d", i), "track", "Order Completed", "u2", `{"order_id":"x"}`, "", nil))
	}
	raw = append(raw, envelope(ws, "good-0", "track", "Order Completed", "u0", `{"order_id":"o0"}`, "", yes)) // SDK retry
	raw = append(raw, envelope(ws, "good-1", "track", "Order Completed", "u1", `{"order_id":"o1"}`, "", yes))
	raw = append(raw, []byte("not a protobuf envelope \xff\xff"))
	raw = append(raw, envelope(ws, "erased-1", "identify", "", "u77", "", `{"email":" Erased@Example.COM"}`, yes))

	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	// Originals first, so the retries are later on their partitions.
	for i, v := range raw {
		key := fmt.Sprintf("k%d", i%4)
		if err := p.Produce(ctx, kafka.Message{Topic: names.Raw, Key: []byte(key), Value: v}); err != nil {
			t.Fatal(err)
		}
	}

	group := testinfra.Unique(t)
	stop := runValidator(t, kc, names, path, group)
	testinfra.WaitCaughtUp(t, kc, group, names.Raw, 60*time.Second)
	stop()

	if got := testinfra.Count(t, kc, names.Valid); got != 10 {
		t.Fatalf("valid topic has %d events, want 10", got)
	}
	n := testinfra.Count(t, kc, names.Invalid)
	reasons := map[string]int{}
	rejs, _ := testinfra.Read(t, kc, names.Invalid, int(n), func() *eventv1.Rejection { return &eventv1.Rejection{} })
	for _, r := range rejs {
		reasons[r.Violations[0].Reason.String()]++
		if r.Stage != "validator" || r.Violations[0].Detail == "" {
			t.Errorf("rejection without stage or detail: %v", r)
		}
		switch r.Violations[0].Reason {
		case eventv1.Reason_REASON_CONSENT_DENIED, eventv1.Reason_REASON_SUPPRESSED:
			if r.Envelope.GetEvent().GetUserId() != "" || len(r.Envelope.GetEvent().GetTraitsJson()) != 0 {
				t.Errorf("PII kept in a %v rejection", r.Violations[0].Reason)
			}
		}
	}
	want := map[string]int{"REASON_SCHEMA_VIOLATION": 3, "REASON_CONSENT_DENIED": 2, "REASON_DUPLICATE": 2, "REASON_FORMAT_VIOLATION": 1, "REASON_SUPPRESSED": 1}
	for r, n := range want {
		if reasons[r] != n {
			t.Errorf("%s: %d rejections, want %d (all: %v)", r, reasons[r], n, reasons)
		}
	}
	if n != 9 {
		t.Fatalf("invalid topic has %d rejections, want 9 (%v)", n, reasons)
	}

	// Replay: a second instance in a new group reads the raw topic from the
	// start, as after lost offsets. Nothing may change on either topic.
	group2 := testinfra.Unique(t) + "-replay"
	stop = runValidator(t, kc, names, path, group2)
	testinfra.WaitCaughtUp(t, kc, group2, names.Raw, 60*time.Second)
	stop()
	if v, i := testinfra.Count(t, kc, names.Valid), testinfra.Count(t, kc, names.Invalid); v != 10 || i != 9 {
		after := map[string]int{}
		rejs, _ := testinfra.Read(t, kc, names.Invalid, int(i), func() *eventv1.Rejection { return &eventv1.Rejection{} })
		for _, r := range rejs {
			after[r.Violations[0].Reason.String()+" "+r.Envelope.GetMessageId()]++
		}
		t.Fatalf("after redelivery: valid %d, invalid %d; want 10 and 9 (redelivery must change nothing): %v", v, i, after)
	}
}
