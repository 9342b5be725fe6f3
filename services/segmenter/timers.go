package main

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/topics"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// scheduler turns durable timers and backfills into ticks on the timers
// topic. Any instance may run it: a due timer is claimed with a lease by
// exactly one instance, which sends the tick; the partition owner of the
// profile handles it in order with the profile's events. An instance that
// dies between claim and send loses nothing: the lease runs out and another
// instance claims the timer again (same tick id, same transition ids).
type scheduler struct {
	store   *segstate.Store
	graph   *identity.Graph
	sink    stage.Sink
	topics  topics.Names
	reg     func() *sources.Registry
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
	owner   string
	// poll is how often due timers are looked for: the delay a timer may
	// fire after it is due.
	poll time.Duration
	// lease is how long a claimed timer or backfill stays with its claimant.
	lease time.Duration
}

const claimBatch = 500

func (s *scheduler) runTimers(ctx context.Context) error {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, ws := range s.reg().Workspaces() {
				if err := s.fire(ctx, ws); err != nil && ctx.Err() == nil {
					s.log.Warn("firing timers", "workspace", ws, "err", err)
				}
			}
		}
	}
}

// fire sends a tick for every timer of ws that is due.
func (s *scheduler) fire(ctx context.Context, ws string) error {
	for {
		due, err := s.store.ClaimDue(ctx, ws, s.now(), s.lease, claimBatch)
		if err != nil || len(due) == 0 {
			return err
		}
		msgs := make([]kafka.Message, len(due))
		for i, d := range due {
			ms := strconv.FormatInt(d.At.UnixMilli(), 10)
			msgs[i] = tickMessage(s.topics.Timers, &segmentv1.Tick{
				TickId: "timer/" + d.ProfileID + "/" + ms, WorkspaceId: ws, ProfileId: d.ProfileID,
				Reason: segmentv1.TickReason_TICK_REASON_TIMER, DueAt: timestamp(d.At),
			})
		}
		if err := s.sink.Produce(ctx, msgs...); err != nil {
			return err // the leases run out and the timers are claimed again
		}
		s.metrics.timers.Add(float64(len(due)))
		if len(due) < claimBatch {
			return nil
		}
	}
}

func tickMessage(topic string, t *segmentv1.Tick) kafka.Message {
	v, err := proto.Marshal(t)
	if err != nil {
		panic(err) // a Tick always encodes
	}
	return kafka.Message{Topic: topic, Key: []byte(t.ProfileId), Value: v}
}

// runBackfills gives every new segment (or new version) its initial
// membership: it pages through the workspace's profiles and sends each a
// backfill tick, while live traffic flows as usual. Segments added together
// share one pass (a tick evaluates every segment of the profile). Progress
// is saved after every page, so another instance resumes where this one
// stopped; the segments are marked done when the pass completes.
func (s *scheduler) runBackfills(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, ws := range s.reg().Workspaces() {
			if err := s.backfill(ctx, ws); err != nil && ctx.Err() == nil {
				s.log.Warn("backfilling segments", "workspace", ws, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *scheduler) backfill(ctx context.Context, ws string) error {
	var pending []string
	var lead string
	var leadSeg *segments.Segment
	var cursor uint64
	for _, seg := range s.reg().Segments(ws) {
		key := segstate.BackfillKey(seg.ID, seg.Version)
		st, err := s.store.Backfill(ctx, ws, key)
		if err != nil {
			return err
		}
		if st.Done {
			continue
		}
		if lead == "" {
			lead, leadSeg, cursor = key, seg, st.Cursor
		}
		pending = append(pending, key)
	}
	if lead == "" {
		return nil
	}
	// The first pending segment's lease and cursor stand for the pass.
	ok, err := s.store.AcquireBackfill(ctx, ws, lead, s.owner, s.lease)
	if err != nil || !ok {
		return err
	}
	s.log.Info("backfilling segments", "workspace", ws, "segments", pending, "resume_cursor", cursor)
	sent := 0
	for {
		pids, next, err := s.graph.ScanProfiles(ctx, ws, cursor, claimBatch)
		if err != nil {
			return err
		}
		msgs := make([]kafka.Message, len(pids))
		for i, pid := range pids {
			msgs[i] = tickMessage(s.topics.Timers, &segmentv1.Tick{
				TickId: "backfill/" + lead + "/" + pid, WorkspaceId: ws, ProfileId: pid,
				// The lead's id and version: the instance that handles the
				// tick waits until its configuration has that version (the
				// pass's other segments came in the same document).
				Reason: segmentv1.TickReason_TICK_REASON_BACKFILL, SegmentId: leadSeg.ID, SegmentVersion: leadSeg.Version,
			})
		}
		if len(msgs) > 0 {
			if err := s.sink.Produce(ctx, msgs...); err != nil {
				return err
			}
		}
		sent += len(msgs)
		s.metrics.backfill.WithLabelValues(ws).Add(float64(len(msgs)))
		if next == 0 {
			break
		}
		if err := s.store.SaveBackfill(ctx, ws, lead, s.owner, next, false, s.lease); err != nil {
			return err
		}
		cursor = next
	}
	for _, key := range pending {
		if err := s.store.SaveBackfill(ctx, ws, key, s.owner, 0, true, s.lease); err != nil && key == lead {
			return err
		}
	}
	s.log.Info("backfill sent", "workspace", ws, "segments", pending, "profiles", sent)
	return nil
}
