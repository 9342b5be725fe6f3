package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
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
	topics  topics.Names
	graph   *identity.Graph
	events  *prometheus.CounterVec
	merges  *prometheus.CounterVec
	blocked *prometheus.CounterVec
	dropped *prometheus.CounterVec
	now     func() time.Time
	// workspace returns a workspace's identity policy (nil: defaults).
	workspace func(ws string) *identity.Config
}

func newHandler(t topics.Names, g *identity.Graph, reg prometheus.Registerer) *handler {
	h := &handler{topics: t, graph: g, now: time.Now,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_stitcher_events_total", Help: "Events by outcome: resolved, new_profile, undecodable.",
		}, []string{"outcome"}),
		merges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_stitcher_merges_total", Help: "Profiles merged into another, by workspace.",
		}, []string{"workspace"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_stitcher_merges_blocked_total",
			Help: "Links and merges merge protection refused, by workspace and reason: limit (identifiers of a type per profile), max_identifiers, denied (an operator cut the link).",
		}, []string{"workspace", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_stitcher_dropped_total",
			Help: "What a profile's bounds refused, by workspace and reason: traits, trait_size, counters, identifiers, evidence (see pkg/identity).",
		}, []string{"workspace", "reason"}),
		workspace: func(string) *identity.Config { return nil },
	}
	if reg != nil {
		reg.MustRegister(h.events, h.merges, h.blocked, h.dropped)
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
		if err := env.UnmarshalVT(m.Value); err != nil || env.Event == nil {
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
		env.Resolution = &eventv1.Resolution{ProfileId: res.ProfileID, ResolvedAt: now, ProfileUnchanged: res.Unchanged(), ProfileVersion: res.Version}
		value, err := env.MarshalVT()
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
			v, err := c.MarshalVT()
			if err != nil {
				return stage.Result{}, fmt.Errorf("encoding profile change: %w", err)
			}
			out := kafka.Message{Topic: h.topics.Profiles, Key: []byte(c.ProfileId), Value: v}
			kafkaclient.CarryTrace(&out, m)
			outs = append(outs, out)
		}
		if len(res.Merged) > 0 {
			h.merges.WithLabelValues(env.WorkspaceId).Add(float64(len(res.Merged)))
		}
		for _, b := range res.Blocked {
			h.blocked.WithLabelValues(env.WorkspaceId, b.Reason).Inc()
		}
		for reason, n := range res.Dropped {
			h.dropped.WithLabelValues(env.WorkspaceId, reason).Add(float64(n))
		}
	}
	return stage.Result{Outputs: outs}, nil
}

var blockReasons = map[string]string{
	identity.BlockLimit:          "limit (the union would hold more identifiers of one type than the workspace allows, e.g. two user ids)",
	identity.BlockMaxIdentifiers: "max_identifiers (a profile holds at most " + strconv.Itoa(identity.MaxIdentifiers) + " identifiers)",
	identity.BlockDenied:         "denied (an operator cut this link)",
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
		// Blocked identifiers go in the detail, never in identities_added:
		// they are not on this profile.
		c := base(profilev1.ChangeKind_CHANGE_KIND_MERGE_BLOCKED)
		var detail []string
		for _, b := range res.Blocked {
			if b.Profile() {
				c.RelatedProfileIds = append(c.RelatedProfileIds, b.What)
				detail = append(detail, "profile "+b.What+": "+blockReasons[b.Reason])
			} else {
				detail = append(detail, "identifier "+b.What+": "+blockReasons[b.Reason])
			}
		}
		c.Detail = "merge protection kept apart " + strings.Join(detail, "; ")
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
