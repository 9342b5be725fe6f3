package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

type handler struct {
	topics topics.Names
	graph  *identity.Graph
	events *prometheus.CounterVec
	merges *prometheus.CounterVec
	now    func() time.Time
	// workspace returns a workspace's identity policy (nil: defaults).
	workspace func(ws string) *identity.Config
}

func newHandler(t topics.Names, g *identity.Graph, reg prometheus.Registerer) *handler {
	h := &handler{topics: t, graph: g, now: time.Now,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_stitcher_events_total", Help: "Events by outcome: resolved, new_profile, undecodable.",
		}, []string{"outcome"}),
		merges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_stitcher_merges_total", Help: "Profile merges by workspace and outcome: merged, blocked (merge protection), dropped (traits or counters beyond a profile's bounds).",
		}, []string{"workspace", "outcome"}),
		workspace: func(string) *identity.Config { return nil },
	}
	if reg != nil {
		reg.MustRegister(h.events, h.merges)
	}
	return h
}

// Handle resolves the batch in one pipelined round trip to Redis, in order,
// and produces each resolved event and the profile changes it caused. A
// redelivered batch gets the same results back (idempotency markers), so the
// outputs carry the same ids and downstream deduplicates them.
func (h *handler) Handle(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
	envs := make([]*eventv1.Envelope, len(batch))
	var updates []identity.Update
	var idx []int
	var outs []kafka.Message
	for i, m := range batch {
		env := &eventv1.Envelope{}
		if err := proto.Unmarshal(m.Value, env); err != nil || env.Event == nil {
			// The validator let it through, so this is a contract bug:
			// dead-letter it with the reason rather than block the stage.
			rej, _ := proto.Marshal(&eventv1.Rejection{Stage: "stitcher", Envelope: &eventv1.Envelope{Raw: m.Value}, RejectedAt: timestamppb.Now(),
				Violations: []*eventv1.Violation{{Reason: eventv1.Reason_REASON_FORMAT_VIOLATION, Rule: "protobuf", Detail: fmt.Sprintf("not an event envelope: %v", err)}}})
			out := kafka.Message{Topic: h.topics.Invalid, Key: m.Key, Value: rej}
			kafkaclient.CarryTrace(&out, m)
			outs = append(outs, out)
			h.events.WithLabelValues("undecodable").Inc()
			continue
		}
		cfg := h.workspace(env.WorkspaceId)
		ids := identity.Identifiers(env.Event)
		if cfg != nil {
			ids = cfg.Prepare(ids)
		}
		if len(ids) == 0 {
			// Every id was a placeholder ("null", "anonymous"): the event
			// is kept, on a profile of its own message.
			ids = []identity.Identifier{{Type: "message_id", Value: env.MessageId}}
		}
		envs[i] = env
		updates = append(updates, identity.Update{
			Workspace: env.WorkspaceId, MessageID: env.SourceId + "/" + env.MessageId, Time: env.Event.GetTimestamp().AsTime(),
			Identifiers: ids, Traits: identity.Traits(env.Event), Counter: identity.Counter(env.Event), Config: cfg,
		})
		idx = append(idx, i)
	}
	results, err := h.graph.ApplyBatch(ctx, updates)
	if err != nil {
		return stage.Result{}, err // Redis unavailable: retry the batch
	}
	now := timestamppb.New(h.now())
	for j, res := range results {
		i := idx[j]
		env, m := envs[i], batch[i]
		env.Resolution = &eventv1.Resolution{ProfileId: res.ProfileID, ResolvedAt: now}
		value, err := proto.Marshal(env)
		if err != nil {
			return stage.Result{}, fmt.Errorf("encoding resolved event: %w", err)
		}
		out := kafka.Message{Topic: h.topics.Resolved, Key: []byte(res.ProfileID), Value: value}
		kafkaclient.CarryTrace(&out, m)
		outs = append(outs, out)
		outcome := "resolved"
		if res.Created {
			outcome = "new_profile"
		}
		h.events.WithLabelValues(outcome).Inc()
		for _, c := range changes(env, res) {
			v, err := proto.Marshal(c)
			if err != nil {
				return stage.Result{}, fmt.Errorf("encoding profile change: %w", err)
			}
			out := kafka.Message{Topic: h.topics.Profiles, Key: []byte(c.ProfileId), Value: v}
			kafkaclient.CarryTrace(&out, m)
			outs = append(outs, out)
		}
		h.merges.WithLabelValues(env.WorkspaceId, "merged").Add(float64(len(res.Merged)))
		h.merges.WithLabelValues(env.WorkspaceId, "blocked").Add(float64(len(res.Blocked)))
		h.merges.WithLabelValues(env.WorkspaceId, "dropped").Add(float64(res.Dropped))
	}
	return stage.Result{Outputs: outs}, nil
}

// changes turns what an event did to the graph into profile changes with
// deterministic ids (same event, same ids).
func changes(env *eventv1.Envelope, res identity.Result) []*profilev1.ProfileChange {
	base := func(kind profilev1.ChangeKind) *profilev1.ProfileChange {
		sum := sha256.Sum256([]byte(env.WorkspaceId + "/" + env.SourceId + "/" + env.MessageId + "/" + kind.String()))
		return &profilev1.ProfileChange{
			ChangeId: hex.EncodeToString(sum[:16]), WorkspaceId: env.WorkspaceId, ProfileId: res.ProfileID, Kind: kind,
			OccurredAt: env.Event.GetTimestamp(), CauseMessageId: env.MessageId, Version: uint64(res.Version),
		}
	}
	var out []*profilev1.ProfileChange
	if res.Created {
		out = append(out, base(profilev1.ChangeKind_CHANGE_KIND_CREATED))
	}
	if len(res.Added) > 0 {
		c := base(profilev1.ChangeKind_CHANGE_KIND_IDENTITIES_ADDED)
		for _, id := range res.Added {
			c.IdentitiesAdded = append(c.IdentitiesAdded, &profilev1.Identity{Type: id.Type, Value: id.Value})
		}
		out = append(out, c)
	}
	if len(res.Merged) > 0 {
		c := base(profilev1.ChangeKind_CHANGE_KIND_MERGED)
		c.RelatedProfileIds = res.Merged
		out = append(out, c)
	}
	if len(res.Blocked) > 0 {
		c := base(profilev1.ChangeKind_CHANGE_KIND_MERGE_BLOCKED)
		c.RelatedProfileIds = res.Blocked
		c.Detail = "merge protection kept these identifiers or profiles apart (identifier limit per type)"
		out = append(out, c)
	}
	if len(res.TraitChanges) > 0 {
		c := base(profilev1.ChangeKind_CHANGE_KIND_TRAITS_UPDATED)
		for _, tc := range res.TraitChanges {
			c.TraitChanges = append(c.TraitChanges, &profilev1.TraitChange{Key: tc.Key, OldValueJson: tc.Old, NewValueJson: tc.New})
		}
		out = append(out, c)
	}
	return out
}
