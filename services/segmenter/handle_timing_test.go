package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// benchSegments is the pipeline benchmark's workspace of n segments
// (deploy/bench/pipeline.sh): a toggle, the lifecycle templates, and
// audiences over the shop's events.
func benchSegments(n int) string {
	var b strings.Builder
	b.WriteString(`- {id: bench-toggle, version: 1, name: Toggle, condition: 'toggles % 2 == 1', aggregates: {toggles: {count: {event: "Bench Toggle"}}}}` + "\n")
	names := segments.TemplateNames()
	sort.Strings(names)
	for _, name := range names {
		lines := strings.Split(strings.TrimSpace(string(segments.Templates()[name])), "\n")
		first := true
		for _, l := range lines {
			if strings.HasPrefix(l, "#") {
				continue
			}
			if first {
				b.WriteString("- " + l + "\n")
				first = false
			} else {
				b.WriteString("  " + l + "\n")
			}
		}
	}
	categories := []string{"audio", "video", "computers", "phones", "cameras", "gaming", "home", "books"}
	for i, have := 0, 1+len(names); have < n; i, have = i+1, have+1 {
		c := categories[i%len(categories)]
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "- {id: views-%s-%d, version: 1, name: 'Viewed %s', condition: 'views >= 3', aggregates: {views: {count: {event: \"Product Viewed\", where: 'properties.category == \"%s\"', within: 7d}}}}\n", c, i, c, c)
		case 1:
			fmt.Fprintf(&b, "- {id: carts-%s-%d, version: 1, name: 'Carted %s', condition: 'carts >= 1 && orders == 0', aggregates: {carts: {count: {event: \"Product Added\", where: 'properties.category == \"%s\"', within: 24h}}, orders: {count: {event: \"Order Completed\", within: 24h}}}}\n", c, i, c, c)
		case 2:
			fmt.Fprintf(&b, "- {id: spend-%d, version: 1, name: 'Spent %d', condition: 'revenue >= %d.0', aggregates: {revenue: {sum: {event: \"Order Completed\", property: revenue, within: 90d}}}}\n", i, i*20, i*20)
		case 3:
			fmt.Fprintf(&b, "- {id: abandoned-%d, version: 1, name: 'Abandoned %d', condition: 'gone', aggregates: {gone: {absence: {after: \"Product Added\", missing: \"Order Completed\", within: %dm}}}}\n", i, i, 30+i)
		case 4:
			fmt.Fprintf(&b, "- {id: pages-%d, version: 1, name: 'Browsers %d', condition: 'pages >= %d && has(traits.email)', aggregates: {pages: {count: {type: page, within: 1h}}}}\n", i, i, i%7+2)
		}
	}
	return b.String()
}

// BenchmarkHandle is the segmenter's handler on batches of 1,000 resolved
// events of 20,000 known profiles (warm: every profile has seen events
// before) against the real Redis, with the pipeline benchmark's 50
// segments: what one event costs the stage, Redis round trips included.
// The events are the shop's mix: page views, product views, cart adds and
// orders, 95% of them leaving the profile as it was.
func BenchmarkHandle(b *testing.B) {
	// As the service runs (app.Config.GCPercent).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	rdb := redisclient.New(testinfra.Redis(b))
	defer rdb.Close()
	ctx := context.Background()
	ws := testinfra.Unique(b)
	defer testinfra.DropRedisKeys(b, rdb, identity.Prefix(ws)+"*") // before the client closes
	doc := "workspaces:\n  - id: " + ws + "\n    sources: []\n    segments:\n" + indent(benchSegments(50), "      ")
	reg, err := sources.Parse([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	if n := len(reg.Segments(ws)); n != 50 {
		b.Fatalf("%d segments, want 50", n)
	}
	graph := identity.New(rdb, identity.DefaultConfig())
	names := topics.Names{Resolved: "bench.resolved", Profiles: "bench.profiles", Timers: "bench.timers", Membership: "bench.membership", Invalid: "bench.invalid"}
	now := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	shards := 2
	if v, err := strconv.Atoi(os.Getenv("FP_BENCH_HANDLE_CONCURRENCY")); err == nil {
		shards = v
	}
	h := &handler{topics: names, reg: func() *sources.Registry { return reg }, graph: graph, store: segstate.New(rdb), shards: shards,
		now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler), metrics: newMetrics(nil)}
	// As the service runs (-profiles.cache); FP_BENCH_HANDLE_PROFILE_CACHE=0
	// reads every profile in full.
	if n, err := strconv.Atoi(os.Getenv("FP_BENCH_HANDLE_PROFILE_CACHE")); err != nil || n > 0 {
		h.profiles = newProfileCache(100000)
	}

	const profiles, batch = 20000, 1000
	pids := make([]string, profiles)
	for i := 0; i < profiles; i += 500 {
		var ups []identity.Update
		for j := i; j < i+500; j++ {
			ups = append(ups, identity.Update{Workspace: ws, MessageID: fmt.Sprintf("web/seed%d", j), Time: now.Add(-time.Hour),
				Identifiers: []identity.Identifier{{Type: "anonymous_id", Value: fmt.Sprintf("a%d", j)}},
				Traits:      map[string]json.RawMessage{"email": json.RawMessage(`"x@y.z"`), "plan": json.RawMessage(`"pro"`)}})
		}
		res, err := graph.ApplyBatch(ctx, ups)
		if err != nil {
			b.Fatal(err)
		}
		for k, r := range res {
			pids[i+k] = r.ProfileID
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	categories := []string{"audio", "video", "computers", "phones", "cameras", "gaming", "home", "books"}
	var offset int64
	// Each event goes through the identity graph first, as the stitcher
	// sends it on: one in twenty changes a trait, the rest leave the
	// profile as it was, and each carries the profile's version after it.
	makeBatch := func() []kafka.Message {
		msgs := make([]kafka.Message, batch)
		ups := make([]identity.Update, batch)
		who := make([]int, batch)
		for i := range ups {
			who[i] = rng.IntN(profiles)
			ups[i] = identity.Update{Workspace: ws, MessageID: fmt.Sprintf("web/e%d-%d", offset, i), Time: now,
				Identifiers: []identity.Identifier{{Type: "anonymous_id", Value: fmt.Sprintf("a%d", who[i])}}}
			if rng.IntN(20) == 0 {
				ups[i].Traits = map[string]json.RawMessage{"cart_value": json.RawMessage(strconv.Itoa(rng.IntN(500)))}
			}
		}
		resolved, err := graph.ApplyBatch(ctx, ups)
		if err != nil {
			b.Fatal(err)
		}
		for i := range msgs {
			offset++
			pid := resolved[i].ProfileID
			e := &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Timestamp: timestamppb.New(now)}
			switch r := rng.IntN(100); {
			case r < 45:
				e.Type, e.Name = eventv1.EventType_EVENT_TYPE_PAGE, "Product"
			case r < 85:
				e.Event, e.PropertiesJson = "Product Viewed", []byte(`{"category":"`+categories[rng.IntN(len(categories))]+`","price":19.5}`)
			case r < 95:
				e.Event, e.PropertiesJson = "Product Added", []byte(`{"category":"`+categories[rng.IntN(len(categories))]+`","price":19.5}`)
			default:
				e.Event, e.PropertiesJson = "Order Completed", []byte(`{"revenue":42.0}`)
			}
			id := fmt.Sprintf("m%d", offset)
			e.MessageId = id
			env := &eventv1.Envelope{SchemaVersion: 1, MessageId: id, WorkspaceId: ws, SourceId: "web", Event: e,
				Resolution: &eventv1.Resolution{ProfileId: pid, ResolvedAt: timestamppb.New(now), ProfileUnchanged: resolved[i].Unchanged(),
					ProfileVersion: resolved[i].Version}}
			v, err := env.MarshalVT()
			if err != nil {
				b.Fatal(err)
			}
			// Keyed by profile, as the stitcher writes them: one partition
			// (of six) per profile.
			hs := fnv.New32a()
			hs.Write([]byte(pid))
			msgs[i] = kafka.Message{Topic: names.Resolved, Partition: int(hs.Sum32() % 6), Offset: offset, Key: []byte(pid), Value: v}
		}
		return msgs
	}
	handle := func(msgs []kafka.Message) {
		res, err := h.Handle(ctx, msgs)
		if err != nil {
			b.Fatal(err)
		}
		if res.AfterAck != nil {
			if err := res.AfterAck(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Warm: every profile has segment state before the timing starts.
	for i := 0; i < 3*profiles/batch; i++ {
		handle(makeBatch())
	}
	batches := make([][]kafka.Message, 20)
	for i := range batches {
		batches[i] = makeBatch()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		handle(batches[i%len(batches)])
		if i%len(batches) == len(batches)-1 {
			b.StopTimer()
			for j := range batches {
				batches[j] = makeBatch() // fresh offsets: no input is a redelivery
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
	if hits, misses := h.profiles.stats(); hits+misses > 0 {
		b.ReportMetric(float64(hits)/float64(hits+misses), "profile-cache-hits")
	}
	// Each step's share of the time, over the warm-up and the timed
	// batches alike (the same work).
	for _, step := range []string{"profiles", "state", "evaluate", "write"} {
		var m dto.Metric
		if err := h.metrics.steps.WithLabelValues(step).(prometheus.Histogram).Write(&m); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(m.GetHistogram().GetSampleSum()*1e9/float64(m.GetHistogram().GetSampleCount()*batch), step+"-ns/event")
	}
}
