package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// handler is the segmenter stage: resolved events, profile changes and
// ticks in; enter/exit transitions out.
//
// Per batch: decode; follow every profile to its survivor (pkg/identity);
// load the survivors' segment state in one round trip; fold each profile's
// inputs in order (engine.go); write every profile's new state, the
// transitions it produced (pending until Kafka acknowledges them) and its
// next timer with one version-checked script each, in one pipelined round
// trip; then the runner produces the transitions and, after the ack,
// forgets the pending copies. A redelivered message is recognised by its
// offset (at or below the profile's watermark for that partition) and its
// pending transitions, if Kafka never acknowledged them, are sent again
// with the same ids.
type handler struct {
	topics topics.Names
	reg    func() *sources.Registry
	graph  *identity.Graph
	store  *segstate.Store
	// shards is how many parts of a batch are computed and written at
	// once (-handle.concurrency).
	shards int
	// configWait bounds how long a backfill tick waits for this
	// instance's configuration to have its segment version
	// (-backfill.config-wait).
	configWait time.Duration
	// staleTicks are the segment versions awaitConfig gave up on.
	staleTicks map[string]bool
	// profiles caches traits and identities between batches (nil: off,
	// -profiles.cache).
	profiles *profileCache
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics
}

type metrics struct {
	inputs      *prometheus.CounterVec
	transitions *prometheus.CounterVec
	evaluations prometheus.Counter
	evalErrors  *prometheus.CounterVec
	conflicts   prometheus.Counter
	timers      prometheus.Counter
	backfill    *prometheus.CounterVec
	staleTicks  prometheus.Counter
	// steps times the parts of handling a batch: profiles (reading the
	// identity graph), state (loading segment state), evaluate (folding
	// and evaluating, no I/O), write (the version-checked state writes).
	steps *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_segmenter_inputs_total", Help: "Inputs by kind (event, profile, merge, delete, tick) and outcome (applied, redelivered, undecodable).",
		}, []string{"kind", "outcome"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_segmenter_transitions_total", Help: "Segment enters and exits by workspace and segment.",
		}, []string{"workspace", "segment", "transition"}),
		evaluations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstparty_segmenter_evaluations_total", Help: "Segment conditions evaluated.",
		}),
		evalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_segmenter_evaluation_errors_total", Help: "Conditions that failed at run time, by workspace and segment (the profile keeps its membership).",
		}, []string{"workspace", "segment"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstparty_segmenter_conflicts_total", Help: "Profiles recomputed because another instance wrote them concurrently.",
		}),
		timers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstparty_segmenter_timers_fired_total", Help: "Due timers claimed and sent as ticks.",
		}),
		backfill: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_segmenter_backfill_ticks_total", Help: "Backfill ticks sent, by workspace.",
		}, []string{"workspace"}),
		staleTicks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "firstparty_segmenter_backfill_ticks_stale_total",
			Help: "Backfill ticks handled without the segment version they were sent for, after -backfill.config-wait (the segment was deleted or replaced meanwhile, or this instance's configuration is stuck).",
		}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "firstparty_segmenter_handle_step_seconds", Help: "Time of each step of handling a batch: profiles (identity graph read), state (segment state read), evaluate (no I/O), write (state writes).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"step"}),
	}
	if reg != nil {
		reg.MustRegister(m.inputs, m.transitions, m.evaluations, m.evalErrors, m.conflicts, m.timers, m.backfill, m.staleTicks, m.steps)
	}
	return m
}

// step records the time since *t under name and restarts *t.
func (m *metrics) step(name string, t *time.Time) {
	now := time.Now()
	m.steps.WithLabelValues(name).Observe(now.Sub(*t).Seconds())
	*t = now
}

var kindNames = map[inputKind]string{inEvent: "event", inProfile: "profile", inMerge: "merge", inDelete: "delete", inTick: "tick"}

// item is one message of the batch.
type item struct {
	msg kafka.Message
	ws  string
	pid string // as the message names it
	in  input
	// needs is the segment version a backfill tick was sent for: the
	// configuration must have it (or a later one) before the tick is
	// handled, or the tick would be spent on the version before.
	needs *segmentv1.Tick
}

// group is one profile's inputs in this batch.
type group struct {
	ws, pid string
	prof    segments.Profile
	items   []*item
	// results of compute
	writes  []segstate.Write
	outs    []kafka.Message
	pending []string // pending fields written
	dups    []string // pending fields of redelivered inputs
	// for metrics, recorded once the group is committed
	ms     []*segmentv1.Membership
	counts map[[2]string]int
	evals  int
	errs   []error
}

const maxConflictRetries = 8

func (h *handler) Handle(ctx context.Context, batch []kafka.Message) (stage.Result, error) {
	var outs []kafka.Message
	var items []*item
	for _, m := range batch {
		it, err := h.decode(m)
		if err != nil {
			outs = append(outs, h.deadLetter(m, err))
			h.metrics.inputs.WithLabelValues("unknown", "undecodable").Inc()
			continue
		}
		if it == nil {
			h.metrics.inputs.WithLabelValues("profile", "ignored").Inc()
			continue
		}
		items = append(items, it)
	}
	if err := h.awaitConfig(ctx, items); err != nil {
		return stage.Result{}, err
	}
	t := time.Now()
	groups, err := h.group(ctx, items)
	if err != nil {
		return stage.Result{}, err
	}
	h.metrics.step("profiles", &t)
	// Commit each workspace's profiles; recompute the ones another writer
	// got to first. The profiles are split into shards that load, fold
	// and write concurrently: most of a shard's time is Redis round trips,
	// which another shard's folding fills. Shards are independent — a
	// profile is in one, and the version check settles what two shards
	// (or two instances) might both touch, such as a merge's loser.
	now := h.now()
	var shards [][]*group
	byWS := map[string][]*group{}
	var order []string
	for _, g := range groups {
		if byWS[g.ws] == nil {
			order = append(order, g.ws)
		}
		byWS[g.ws] = append(byWS[g.ws], g)
	}
	n := max(1, h.shards)
	for _, ws := range order {
		gs := byWS[ws]
		size := (len(gs) + n - 1) / n
		for len(gs) > 0 {
			k := min(size, len(gs))
			shards = append(shards, gs[:k])
			gs = gs[k:]
		}
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(n)
	for _, shard := range shards {
		eg.Go(func() error { return h.commitShard(ectx, shard, now) })
	}
	if err := eg.Wait(); err != nil {
		return stage.Result{}, err
	}
	acks := map[string]map[string][]string{}
	for _, g := range groups {
		h.record(g)
		// Transitions of redelivered inputs that Kafka never acknowledged
		// go first: those inputs came before this batch's new ones, and a
		// profile's transitions must reach consumers in the order they
		// happened.
		if len(g.dups) > 0 {
			again, err := h.store.Pending(ctx, g.ws, g.pid, g.dups)
			if err != nil {
				return stage.Result{}, err
			}
			for _, m := range again {
				outs = append(outs, h.output(m, g.items[0].msg))
			}
		}
		outs = append(outs, g.outs...)
		if f := append(g.pending, g.dups...); len(f) > 0 {
			if acks[g.ws] == nil {
				acks[g.ws] = map[string][]string{}
			}
			acks[g.ws][g.pid] = append(acks[g.ws][g.pid], f...)
		}
	}
	return stage.Result{Outputs: outs, AfterAck: func(ctx context.Context) error {
		for ws, byPID := range acks {
			if err := h.store.Ack(ctx, ws, byPID); err != nil {
				return err
			}
		}
		return nil
	}}, nil
}

// commitShard computes and writes one workspace's groups, recomputing
// those another writer changed since they were loaded.
func (h *handler) commitShard(ctx context.Context, gs []*group, now time.Time) error {
	ws := gs[0].ws
	todo := gs
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == maxConflictRetries {
			return fmt.Errorf("segment state of %d profiles in %s kept changing concurrently", len(todo), ws)
		}
		if err := h.compute(ctx, ws, todo, now); err != nil {
			return err
		}
		writes := make([][]segstate.Write, len(todo))
		for i, g := range todo {
			writes[i] = g.writes
		}
		t := time.Now()
		res, err := h.store.CommitMany(ctx, ws, writes)
		if err != nil {
			return err
		}
		h.metrics.step("write", &t)
		var again []*group
		for i, g := range todo {
			if res[i] != nil {
				again = append(again, g)
			}
		}
		h.metrics.conflicts.Add(float64(len(again)))
		todo = again
	}
	return nil
}

// awaitConfig holds the batch until this instance's configuration has
// the segment version of each backfill tick in it. The instance that sent
// a backfill saw a configuration this one may not have read yet; handled
// under the version before, the tick would be spent and the new version
// never filled for profiles without events. Configuration usually
// arrives within a second; after h.configWait (a segment deleted or
// replaced meanwhile) the tick is handled under what is there, as a
// warning.
func (h *handler) awaitConfig(ctx context.Context, items []*item) error {
	var deadline time.Time
	for _, it := range items {
		if it.needs == nil {
			continue
		}
		for !hasVersion(h.reg().Segments(it.ws), it.needs.SegmentId, it.needs.SegmentVersion) {
			if deadline.IsZero() {
				deadline = time.Now().Add(h.configWait)
			}
			gaveUp := it.ws + "\x00" + it.needs.SegmentId + "@" + strconv.FormatUint(uint64(it.needs.SegmentVersion), 10)
			if h.staleTicks[gaveUp] || !time.Now().Before(deadline) {
				// Once given up on, a version is not waited for again:
				// a deleted segment's remaining ticks would otherwise hold
				// every batch they are in.
				if !h.staleTicks[gaveUp] {
					if h.staleTicks == nil {
						h.staleTicks = map[string]bool{}
					}
					h.staleTicks[gaveUp] = true
					h.log.Warn("backfill ticks for a segment version this instance's configuration does not have; handled under the configuration in force",
						"workspace", it.ws, "segment", it.needs.SegmentId, "version", it.needs.SegmentVersion, "waited", h.configWait)
				}
				h.metrics.staleTicks.Inc()
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(configPoll):
			}
		}
	}
	return nil
}

// configPoll is how often awaitConfig looks at the configuration again.
const configPoll = 50 * time.Millisecond

// hasVersion reports whether segs hold segment id at version or later.
func hasVersion(segs []*segments.Segment, id string, version uint32) bool {
	for _, s := range segs {
		if s.ID == id {
			return s.Version >= version
		}
	}
	return false
}

// decode turns a message into an input; nil (and no error) for messages
// the segmenter has no use for.
func (h *handler) decode(m kafka.Message) (*item, error) {
	switch m.Topic {
	case h.topics.Resolved:
		env := &eventv1.Envelope{}
		if err := env.UnmarshalVT(m.Value); err != nil || env.Event == nil || env.Resolution.GetProfileId() == "" {
			return nil, fmt.Errorf("not a resolved event envelope (%v)", err)
		}
		e := env.Event
		name := e.Event
		if name == "" {
			name = e.Name
		}
		typ := strings.ToLower(strings.TrimPrefix(e.Type.String(), "EVENT_TYPE_"))
		return &item{msg: m, ws: env.WorkspaceId, pid: env.Resolution.ProfileId, in: input{
			kind: inEvent, causeID: env.SourceId + "/" + env.MessageId, at: e.GetTimestamp().AsTime(), profileUnchanged: env.Resolution.ProfileUnchanged,
			profileVersion: env.Resolution.ProfileVersion,
			event:          segments.NewEvent(segments.Event{MessageID: env.MessageId, Type: typ, Name: name, Time: e.GetTimestamp().AsTime(), Properties: e.PropertiesJson}),
		}}, nil
	case h.topics.Profiles:
		c := &profilev1.ProfileChange{}
		if err := c.UnmarshalVT(m.Value); err != nil || c.ProfileId == "" {
			return nil, fmt.Errorf("not a profile change (%v)", err)
		}
		in := input{kind: inProfile, causeID: "change/" + c.ChangeId, at: c.GetOccurredAt().AsTime()}
		switch c.Kind {
		case profilev1.ChangeKind_CHANGE_KIND_MERGED:
			in.kind, in.losers = inMerge, c.RelatedProfileIds
		case profilev1.ChangeKind_CHANGE_KIND_DELETED:
			in.kind = inDelete
		case profilev1.ChangeKind_CHANGE_KIND_MERGE_BLOCKED, profilev1.ChangeKind_CHANGE_KIND_CREATED,
			profilev1.ChangeKind_CHANGE_KIND_IDENTITIES_ADDED, profilev1.ChangeKind_CHANGE_KIND_TRAITS_UPDATED:
			// Caused by an event, which reaches the segmenter itself on the
			// resolved topic and is evaluated against the profile as it is
			// then (these changes included): nothing more to do.
			return nil, nil
		}
		return &item{msg: m, ws: c.WorkspaceId, pid: c.ProfileId, in: in}, nil
	case h.topics.Timers:
		t := &segmentv1.Tick{}
		if err := t.UnmarshalVT(m.Value); err != nil || t.ProfileId == "" {
			return nil, fmt.Errorf("not a tick (%v)", err)
		}
		at := t.GetDueAt().AsTime()
		if t.DueAt == nil {
			at = h.now()
		}
		it := &item{msg: m, ws: t.WorkspaceId, pid: t.ProfileId, in: input{kind: inTick, causeID: "tick/" + t.TickId, at: at}}
		if t.Reason == segmentv1.TickReason_TICK_REASON_BACKFILL && t.SegmentVersion > 0 {
			it.needs = t
		}
		return it, nil
	}
	return nil, fmt.Errorf("message from unexpected topic %q", m.Topic)
}

func (h *handler) deadLetter(m kafka.Message, err error) kafka.Message {
	rej, _ := proto.Marshal(&eventv1.Rejection{Stage: "segmenter", Envelope: &eventv1.Envelope{Raw: m.Value}, RejectedAt: timestamppb.New(h.now()),
		Violations: []*eventv1.Violation{{Reason: eventv1.Reason_REASON_FORMAT_VIOLATION, Rule: "protobuf", Detail: fmt.Sprintf("%s: %v", m.Topic, err)}}})
	out := kafka.Message{Topic: h.topics.Invalid, Key: m.Key, Value: rej}
	kafkaclient.CarryTrace(&out, m)
	return out
}

// group follows each message's profile to its survivor and groups the
// inputs by survivor, in order.
func (h *handler) group(ctx context.Context, items []*item) ([]*group, error) {
	type key struct{ ws, pid string }
	profiles := map[key]*segments.Profile{}
	for _, it := range items {
		if it.in.kind != inDelete {
			profiles[key{it.ws, it.pid}] = nil
		}
	}
	// The versions of each profile's events, and whether all of its
	// inputs are events that left it unchanged (profileCache).
	versions := map[key][]int64{}
	uncached := map[key]bool{}
	for _, it := range items {
		k := key{it.ws, it.pid}
		if it.in.kind != inEvent || !it.in.profileUnchanged || it.in.profileVersion <= 0 {
			uncached[k] = true
			continue
		}
		versions[k] = append(versions[k], it.in.profileVersion)
	}
	byWS := map[string][]string{}
	for k := range profiles {
		byWS[k.ws] = append(byWS[k.ws], k.pid)
	}
	type hit struct {
		c       *cachedProfile
		through int64
	}
	for ws, pids := range byWS {
		hits := map[string]hit{}
		for _, pid := range pids {
			k := key{ws, pid}
			if uncached[k] {
				continue
			}
			if c, through := h.profiles.lookup(profileKey{ws, pid}, versions[k]); c != nil {
				hits[pid] = hit{c, through}
			}
		}
		// Conditions see traits, identities and times: counters and merge
		// history are not read, nor the traits and identities of the
		// profiles the cache holds.
		opts := identity.ReadOptions{SkipCounters: true, SkipMerged: true}
		if len(hits) > 0 {
			opts.Partial = func(pid string) bool { _, ok := hits[pid]; return ok }
		}
		got, err := h.graph.ProfilesWith(ctx, ws, pids, opts)
		if err != nil {
			return nil, err
		}
		// A partial answer the cache cannot complete (its events run
		// ahead of the profile's own version: not expected) is read again
		// in full.
		var again []string
		for pid, p := range got {
			if hh, ok := hits[p.ID]; p.Partial && (!ok || p.Version < hh.through) {
				again = append(again, pid)
				h.profiles.forget(profileKey{ws, p.ID})
			}
		}
		if len(again) > 0 {
			full, err := h.graph.ProfilesWith(ctx, ws, again, identity.ReadOptions{SkipCounters: true, SkipMerged: true})
			if err != nil {
				return nil, err
			}
			for _, pid := range again {
				if p, ok := full[pid]; ok {
					got[pid] = p
				} else {
					delete(got, pid)
				}
			}
		}
		for _, pid := range pids {
			p, ok := got[pid]
			if !ok {
				// Not (or no longer) in the identity graph: evaluate on
				// the aggregates alone, under the id the message names.
				h.profiles.forget(profileKey{ws, pid})
				profiles[key{ws, pid}] = &segments.Profile{ID: pid}
				continue
			}
			sp := &segments.Profile{ID: p.ID, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen}
			if p.Partial {
				hh := hits[p.ID]
				sp.Traits, sp.Identities = hh.c.traits, hh.c.identities
				h.profiles.extend(profileKey{ws, p.ID}, hh.through)
			} else {
				sp.Traits = p.Traits
				for _, id := range p.Identities {
					sp.Identities = append(sp.Identities, id.String())
				}
				h.profiles.put(profileKey{ws, p.ID}, p.Version, sp.Traits, sp.Identities)
			}
			if p.ID != pid {
				h.profiles.forget(profileKey{ws, pid}) // merged away
			}
			profiles[key{ws, pid}] = sp
		}
	}
	var out []*group
	byPID := map[key]*group{}
	for _, it := range items {
		prof := segments.Profile{ID: it.pid}
		if p := profiles[key{it.ws, it.pid}]; p != nil {
			prof = *p
		}
		k := key{it.ws, prof.ID}
		g := byPID[k]
		if g == nil {
			g = &group{ws: it.ws, pid: prof.ID, prof: prof}
			byPID[k] = g
			out = append(out, g)
		}
		g.items = append(g.items, it)
	}
	return out, nil
}

// compute loads the groups' state and folds their inputs, filling each
// group's writes and outputs.
func (h *handler) compute(ctx context.Context, ws string, gs []*group, now time.Time) error {
	var pids []string
	for _, g := range gs {
		pids = append(pids, g.pid)
		for _, it := range g.items {
			pids = append(pids, it.in.losers...)
		}
	}
	t := time.Now()
	states, err := h.store.Load(ctx, ws, pids)
	if err != nil {
		return err
	}
	h.metrics.step("state", &t)
	segs := h.reg().Segments(ws)
	ev := &evaluator{segs: segs}
	for _, g := range gs {
		h.fold(g, ev, states, now)
	}
	h.metrics.step("evaluate", &t)
	return nil
}

// fold applies a group's inputs to its profile with ev (reset here) and
// fills the group's writes and outputs.
func (h *handler) fold(g *group, ev *evaluator, states map[string]*segstate.Profile, now time.Time) {
	p := states[g.pid]
	segs := ev.segs
	ev.reset()
	g.outs, g.pending, g.dups, g.writes, g.ms = nil, nil, nil, nil, nil
	g.counts = map[[2]string]int{}
	w := segstate.Write{ProfileID: g.pid, ExpectVersion: p.Version, Watermarks: map[string]int64{}, Pending: map[string][]*segmentv1.Membership{}}
	var losers []segstate.Write
	for _, it := range g.items {
		m := it.msg
		kind := kindNames[it.in.kind]
		field := segstate.PendingField(m.Topic, m.Partition, m.Offset)
		if p.Applied(m.Topic, m.Partition, m.Offset) {
			g.dups = append(g.dups, field)
			g.counts[[2]string{kind, "redelivered"}]++
			continue
		}
		g.counts[[2]string{kind, "applied"}]++
		at := now
		if it.in.kind == inTick && it.in.at.After(at) {
			at = it.in.at // another instance's clock ran ahead: the timer is due
		}
		var trans []transition
		switch it.in.kind {
		case inMerge:
			for _, lid := range it.in.losers {
				lp := states[lid]
				if lp == nil || lid == g.pid {
					continue
				}
				trans = append(trans, mergeEntries(p, lid, lp, it.in)...)
				for c, off := range lp.Watermarks {
					if off > p.Watermarks[c] && off > w.Watermarks[c] {
						w.Watermarks[c] = off
					}
				}
				losers = append(losers, segstate.Write{ProfileID: lid, ExpectVersion: lp.Version, Wipe: true, MergedInto: g.pid})
				lp.Clear() // a second merge of it in this batch adds nothing
			}
			for _, id := range p.IDs() {
				ev.dirty[id] = true
			}
			trans = append(trans, ev.apply(p, g.prof, it.in, at)...)
		case inDelete:
			trans = exitAll(g.pid, p, it.in)
			p.Clear()
			w.Wipe = true
		default:
			trans = append(trans, ev.apply(p, g.prof, it.in, at)...)
		}
		w.Watermarks[segstate.Cause(m.Topic, m.Partition)] = m.Offset
		if len(trans) == 0 {
			continue
		}
		ms := make([]*segmentv1.Membership, len(trans))
		for i, t := range trans {
			ms[i] = toProto(g.ws, t, now)
			g.outs = append(g.outs, h.output(ms[i], m))
		}
		g.ms = append(g.ms, ms...)
		w.Pending[field] = ms
		g.pending = append(g.pending, field)
	}
	g.evals, g.errs = ev.evaluations, ev.errors
	if w.Wipe {
		w.Timer = time.Time{}
	} else {
		w.Entries = map[string]*segstate.Entry{}
		for id := range ev.dirty {
			e := p.Get(id)
			switch {
			case e == nil:
			case e.Empty() && p.Stored(id):
				w.Delete = append(w.Delete, id) // nothing left worth keeping
			case e.Empty():
				// A profile that merely does not qualify costs no storage:
				// its entry is made afresh (and evaluated) when needed.
			default:
				w.Entries[id] = e
			}
		}
		for _, id := range p.IDs() {
			if !ev.configured(id) {
				w.Delete = append(w.Delete, id) // the segment was removed
			}
		}
		w.Timer, w.Due = nextDeadline(segs, p, now)
	}
	g.writes = append([]segstate.Write{w}, losers...)
}

// record counts what a committed group did.
func (h *handler) record(g *group) {
	for k, n := range g.counts {
		h.metrics.inputs.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	h.metrics.evaluations.Add(float64(g.evals))
	for _, err := range g.errs {
		var se *segments.EvalError
		seg := "unknown"
		if errors.As(err, &se) {
			seg = se.Segment
		}
		h.metrics.evalErrors.WithLabelValues(g.ws, seg).Inc()
		h.log.Warn("segment condition failed; the profile keeps its membership", "workspace", g.ws, "profile", g.pid, "err", err)
	}
	for _, ms := range g.ms {
		tr := "exit"
		if ms.Transition == segmentv1.Transition_TRANSITION_ENTER {
			tr = "enter"
		}
		h.metrics.transitions.WithLabelValues(ms.WorkspaceId, ms.SegmentId, tr).Inc()
	}
}

// output is a transition as a Kafka message, keyed by profile and carrying
// the cause's trace id.
func (h *handler) output(ms *segmentv1.Membership, cause kafka.Message) kafka.Message {
	v, err := ms.MarshalVT()
	if err != nil {
		panic(err) // a Membership always encodes
	}
	out := kafka.Message{Topic: h.topics.Membership, Key: []byte(ms.ProfileId), Value: v}
	kafkaclient.CarryTrace(&out, cause)
	return out
}

func timestamp(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
