package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/dedup"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/validation"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// handler runs one batch through pkg/validation: prepare every message,
// look the batch up in Redis twice (dedup window, suppression list), decide,
// and record the accepted message ids only after the valid topic
// acknowledged them (AfterAck). Until then they are held in inflight: the
// stage runner handles the next batch while this one's outputs wait for
// their ack, and a duplicate in it must still be found.
type handler struct {
	topics      topics.Names
	sources     *sources.Live
	dedup       *dedup.Store
	inflight    dedup.Inflight
	suppression *suppression.List
	events      *prometheus.CounterVec
	now         func() time.Time
}

func newHandler(t topics.Names, live *sources.Live, d *dedup.Store, s *suppression.List, reg prometheus.Registerer) *handler {
	h := &handler{topics: t, sources: live, dedup: d, suppression: s, now: time.Now,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_validator_events_total",
			Help: "Events by source (workspace/source), event (name when planned, else its type), outcome (valid, rejected, redelivered) and reason.",
		}, []string{"source", "event", "outcome", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(h.events)
	}
	return h
}

func (h *handler) Handle(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
	reg := h.sources.Current()
	preps := make([]validation.Prepared, len(batch))
	lookups := make([]validation.Lookup, len(batch))
	// Two kinds of ids go to the dedup window: a valid event's message id
	// (its value is the origin of the delivery that produced it), and, for
	// every message, a marker of its delivery ("@<origin>/<message id>") that
	// is recorded when it was rejected. A Kafka redelivery of a message
	// whose outputs were already produced finds one of the two and produces
	// nothing again, so replaying the raw topic changes neither output topic.
	var ids []dedup.ID
	type ref struct {
		i      int
		marker bool
	}
	var refs []ref
	markers := make([]dedup.ID, len(batch))
	redelivered := make([]bool, len(batch))
	byWorkspace := map[string][]int{}
	for i, m := range batch {
		preps[i] = validation.Prepare(m.Value, reg)
		lookups[i].Origin = origin(m)
		markers[i] = marker(preps[i], lookups[i].Origin, m.Value)
		ids = append(ids, markers[i])
		refs = append(refs, ref{i, true})
		if len(preps[i].Format) > 0 {
			continue
		}
		env := preps[i].Env
		ids = append(ids, dedup.ID{Workspace: env.WorkspaceId, Source: env.SourceId, MessageID: env.MessageId})
		refs = append(refs, ref{i, false})
		byWorkspace[env.WorkspaceId] = append(byWorkspace[env.WorkspaceId], i)
	}

	// Redis unavailable is transient: the whole batch is retried.
	seen, err := h.dedup.Seen(ctx, ids)
	if err != nil {
		return stage.Result{}, err
	}
	h.inflight.Fill(ids, seen)
	for j, origin := range seen {
		r := refs[j]
		switch {
		case r.marker && origin == lookups[r.i].Origin:
			redelivered[r.i] = true
		case !r.marker:
			lookups[r.i].SeenOrigin = origin
		}
	}
	for ws, idx := range byWorkspace {
		var all []suppression.Identifier
		var owner []int
		for _, i := range idx {
			for _, id := range preps[i].Identifiers {
				all = append(all, id)
				owner = append(owner, i)
			}
		}
		found, err := h.suppression.Check(ctx, ws, all)
		if err != nil {
			return stage.Result{}, err
		}
		for k, f := range found {
			if f {
				lookups[owner[k]].Suppressed = true
			}
		}
	}

	now := h.now()
	outs := make([]kafka.Message, 0, len(batch))
	var record []dedup.Entry
	for i, m := range batch {
		label := eventLabel(preps[i])
		if redelivered[i] {
			h.events.WithLabelValues(label.source, label.event, "redelivered", "").Inc()
			continue
		}
		d := validation.Decide(preps[i], lookups[i], now)
		var out kafka.Message
		switch d.Outcome {
		case validation.Redelivered:
			h.events.WithLabelValues(label.source, label.event, "redelivered", "").Inc()
			continue
		case validation.Valid:
			value, err := d.Valid.MarshalVT()
			if err != nil {
				return stage.Result{}, fmt.Errorf("encoding valid event: %w", err)
			}
			out = kafka.Message{Topic: h.topics.Valid, Key: m.Key, Value: value}
			record = append(record, dedup.Entry{
				ID:     dedup.ID{Workspace: d.Valid.WorkspaceId, Source: d.Valid.SourceId, MessageID: d.Valid.MessageId},
				Origin: lookups[i].Origin,
			})
			h.events.WithLabelValues(label.source, label.event, "valid", "").Inc()
		case validation.Rejected:
			value, err := d.Rejection.MarshalVT()
			if err != nil {
				return stage.Result{}, fmt.Errorf("encoding rejection: %w", err)
			}
			out = kafka.Message{Topic: h.topics.Invalid, Key: m.Key, Value: value}
			record = append(record, dedup.Entry{ID: markers[i], Origin: lookups[i].Origin})
			h.events.WithLabelValues(label.source, label.event, "rejected", d.Reason()).Inc()
		}
		kafkaclient.CarryTrace(&out, m)
		outs = append(outs, out)
	}
	h.inflight.Add(record)
	return stage.Result{
		Outputs: outs,
		AfterAck: func(ctx context.Context) error {
			if err := h.dedup.Record(ctx, record); err != nil {
				return err
			}
			h.inflight.Done(record)
			return nil
		},
	}, nil
}

// origin names one delivery of a message: its position on the raw topic,
// and the message's Kafka timestamp, so a topic that was deleted and created
// again (its offsets restarting at 0) cannot make a new message look like an
// old one.
func origin(m kafka.Message) string {
	return m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10) + "/" + strconv.FormatInt(m.Time.UnixMilli(), 10)
}

// marker is the dedup id that records one delivery of a message. It names
// the message id as well as the offset, so a recreated topic whose offsets
// start again cannot make a new message look delivered.
func marker(p validation.Prepared, origin string, value []byte) dedup.ID {
	ws, src, id := "_", "_", ""
	if p.Env != nil {
		if p.Env.WorkspaceId != "" {
			ws = p.Env.WorkspaceId
		}
		if p.Env.SourceId != "" {
			src = p.Env.SourceId
		}
		id = p.Env.MessageId
	}
	if id == "" {
		sum := sha256.Sum256(value)
		id = hex.EncodeToString(sum[:8])
	}
	return dedup.ID{Workspace: ws, Source: src, MessageID: "@" + origin + "/" + id}
}

type labels struct{ source, event string }

// eventLabel keeps the event label's values bounded: a track event's name
// only when the source's tracking plan defines it, otherwise the call type.
func eventLabel(p validation.Prepared) labels {
	if p.Env == nil || p.Env.Event == nil || len(p.Format) > 0 {
		return labels{"unknown", "unknown"}
	}
	l := labels{source: p.Env.WorkspaceId + "/" + p.Env.SourceId, event: typeName(p.Env.Event.Type)}
	if p.Source == nil {
		l.source = "unconfigured"
	}
	if p.Env.Event.Type == eventv1.EventType_EVENT_TYPE_TRACK && p.Source != nil && p.Source.Plan != nil && p.Source.Plan.Defines(p.Env.Event.Event) {
		l.event = p.Env.Event.Event
	}
	return l
}

func typeName(t eventv1.EventType) string {
	switch t {
	case eventv1.EventType_EVENT_TYPE_TRACK:
		return "track"
	case eventv1.EventType_EVENT_TYPE_IDENTIFY:
		return "identify"
	case eventv1.EventType_EVENT_TYPE_PAGE:
		return "page"
	case eventv1.EventType_EVENT_TYPE_SCREEN:
		return "screen"
	case eventv1.EventType_EVENT_TYPE_GROUP:
		return "group"
	case eventv1.EventType_EVENT_TYPE_ALIAS:
		return "alias"
	}
	return "unknown"
}
