package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// clock is a controllable clock shared by the test and the service.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) {
	c.ns.Add(int64(d))
}

// harness runs segmenters against the real broker and Redis, with a
// workspace of its own, and collects every transition they produce.
type harness struct {
	t      *testing.T
	kc     kafkaclient.Config
	names  topics.Names
	ws     string
	clock  *clock
	graph  *identity.Graph
	store  *segstate.Store
	prod   *kafkaclient.Producer
	config string
	group  string
	seq    atomic.Int64

	mu  sync.Mutex
	got []*segmentv1.Membership
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, segmentsYAML string) *harness {
	t.Helper()
	kc := testinfra.Kafka(t)
	rdb := redisclient.New(testinfra.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	h := &harness{t: t, kc: kc, names: testinfra.Topics(t, kc), ws: testinfra.Unique(t), clock: newClock(t0),
		graph: identity.New(rdb, identity.DefaultConfig()), store: segstate.New(rdb),
		config: filepath.Join(t.TempDir(), "workspaces.yaml"), group: testinfra.Unique(t)}
	h.writeConfig(segmentsYAML)
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	h.prod = p
	h.collect()
	return h
}

// writeConfig replaces the workspace's segments (the service reloads it).
func (h *harness) writeConfig(segmentsYAML string) { h.writeConfigWith(segmentsYAML, "") }

// writeConfigWith also declares webhook destinations.
func (h *harness) writeConfigWith(segmentsYAML, destinationsYAML string) {
	h.t.Helper()
	doc := "workspaces:\n  - id: " + h.ws + "\n    sources: []\n    segments:\n" + indent(segmentsYAML, "      ")
	if destinationsYAML != "" {
		doc += "    destinations:\n" + indent(destinationsYAML, "      ")
	}
	tmp := h.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.config); err != nil {
		h.t.Fatal(err)
	}
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// start runs one segmenter instance in the harness's consumer group.
func (h *harness) start() (stop func()) {
	h.t.Helper()
	env := testinfra.With(testinfra.TopicEnv(h.names), "FP_KAFKA_BROKERS", h.kc.Brokers.String(),
		"FP_REDIS_ADDR", testinfra.Redis(h.t).Addrs.String(), "FP_CONSUMER_GROUP", h.group, "FP_DRAIN_TIMEOUT", "5s",
		"FP_CONSUMER_BATCH_WAIT", "5ms", "FP_SOURCES_FILE", h.config, "FP_SOURCES_RELOAD_INTERVAL", "50ms",
		"FP_TIMERS_POLL", "20ms", "FP_BACKFILL_INTERVAL", "50ms", "FP_TIMERS_LEASE", "2s")
	_, stop = testinfra.StartService(h.t, "segmenter", &service{now: h.clock.Now}, env)
	return stop
}

// collect reads every transition from the membership topic in the background.
func (h *harness) collect() {
	cc := kafkaclient.ConsumerConfig{GroupID: testinfra.Unique(h.t) + "-collect", BatchSize: 1000, BatchWait: 5 * time.Millisecond, SessionTimeout: 6 * time.Second}
	c, err := kafkaclient.NewConsumer(h.kc, cc, nil, h.names.Membership)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			batch, err := c.FetchBatch(ctx)
			if err != nil {
				return
			}
			for _, m := range batch {
				ms := &segmentv1.Membership{}
				if err := proto.Unmarshal(m.Value, ms); err != nil {
					h.t.Errorf("membership message is not a Membership: %v", err)
					continue
				}
				if string(m.Key) != ms.ProfileId {
					h.t.Errorf("membership keyed by %q, want its profile %q", m.Key, ms.ProfileId)
				}
				h.mu.Lock()
				h.got = append(h.got, ms)
				h.mu.Unlock()
			}
		}
	}()
	h.t.Cleanup(func() { cancel(); <-done; c.Close() })
}

// transitions returns what was produced so far as "profile segment enter|exit" lines.
func (h *harness) transitions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.got))
	for i, m := range h.got {
		out[i] = describe(m)
	}
	return out
}

func describe(m *segmentv1.Membership) string {
	dir := "exit"
	if m.Transition == segmentv1.Transition_TRANSITION_ENTER {
		dir = "enter"
	}
	return m.ProfileId + " " + m.SegmentId + " " + dir
}

// waitFor waits until the transitions produced are exactly want (in any
// order), then a little longer to be sure no more come.
func (h *harness) waitFor(want ...string) {
	h.t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := h.transitions()
		sort.Strings(got)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			time.Sleep(300 * time.Millisecond)
			if again := h.transitions(); len(again) == len(got) {
				return
			}
			continue
		}
		if time.Now().After(deadline) || len(got) > len(want) {
			h.t.Fatalf("transitions:\n got  %q\n want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// track sends a resolved track event for profile pid at the clock's time.
func (h *harness) track(pid, event string, props map[string]any) {
	h.t.Helper()
	h.send(pid, eventv1.EventType_EVENT_TYPE_TRACK, event, props)
}

func (h *harness) send(pid string, typ eventv1.EventType, event string, props map[string]any) string {
	h.t.Helper()
	id := fmt.Sprintf("m%d", h.seq.Add(1))
	pj, _ := json.Marshal(props)
	if props == nil {
		pj = []byte("{}")
	}
	env := &eventv1.Envelope{SchemaVersion: 1, MessageId: id, WorkspaceId: h.ws, SourceId: "web",
		Event:      &eventv1.Event{Type: typ, MessageId: id, UserId: pid, Event: event, Timestamp: timestamppb.New(h.clock.Now()), PropertiesJson: pj},
		Resolution: &eventv1.Resolution{ProfileId: pid, ResolvedAt: timestamppb.New(h.clock.Now())}}
	h.produce(h.names.Resolved, pid, env)
	return id
}

func (h *harness) produce(topic, key string, m proto.Message) {
	h.t.Helper()
	v, err := proto.Marshal(m)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.prod.Produce(context.Background(), kafka.Message{Topic: topic, Key: []byte(key), Value: v}); err != nil {
		h.t.Fatal(err)
	}
}

// identify updates a person in the real identity graph (as the stitcher
// does) and announces the trait change; it returns the profile id.
func (h *harness) identify(userID string, traits map[string]any) string {
	h.t.Helper()
	id := fmt.Sprintf("i%d", h.seq.Add(1))
	tr := map[string]json.RawMessage{}
	for k, v := range traits {
		tr[k], _ = json.Marshal(v)
	}
	res, err := h.graph.Apply(context.Background(), identity.Update{Workspace: h.ws, MessageID: id, Time: h.clock.Now(),
		Identifiers: []identity.Identifier{{Type: "user_id", Value: userID}}, Traits: tr, Counter: "identify"})
	if err != nil {
		h.t.Fatal(err)
	}
	// The stitcher sends the event on (and announces the trait change,
	// which the segmenter needs no more than the event).
	h.change(res.ProfileID, profilev1.ChangeKind_CHANGE_KIND_TRAITS_UPDATED, id)
	h.send(res.ProfileID, eventv1.EventType_EVENT_TYPE_IDENTIFY, "", nil)
	return res.ProfileID
}

func (h *harness) change(pid string, kind profilev1.ChangeKind, cause string, related ...string) {
	h.t.Helper()
	h.produce(h.names.Profiles, pid, &profilev1.ProfileChange{ChangeId: cause + "-" + kind.String(), WorkspaceId: h.ws, ProfileId: pid,
		Kind: kind, OccurredAt: timestamppb.New(h.clock.Now()), CauseMessageId: cause, RelatedProfileIds: related})
}

// membershipsOf reads a profile's current segments back from Redis.
func (h *harness) membershipsOf(pid string) []string {
	h.t.Helper()
	ms, err := h.store.Memberships(context.Background(), h.ws, pid)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.SegmentID)
	}
	return out
}
