package main

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/segstate"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// This file is the stage's pure core: given a profile's segment state, the
// workspace's segments and one input, it decides the new state and the
// transitions. No I/O; the clock is an argument.

// inputKind is what moved a profile.
type inputKind uint8

const (
	inEvent   inputKind = iota // a resolved event
	inProfile                  // traits or identities changed, or a split
	inMerge                    // other profiles were merged into this one
	inDelete                   // the profile was erased
	inTick                     // a timer fell due, or a backfill asks
)

// input is one message, decoded.
type input struct {
	kind    inputKind
	causeID string    // message, change or tick id: part of every transition id
	at      time.Time // event time, change time or due time
	event   segments.Event
	losers  []string // inMerge: profiles absorbed
}

// transition is one enter or exit.
type transition struct {
	segment string
	version uint32
	profile string
	enter   bool
	at      time.Time
	causeID string
}

// membershipID is deterministic in what caused the transition, so a
// redelivered input yields the same id and consumers can deduplicate.
func membershipID(ws string, t transition) string {
	dir := "exit"
	if t.enter {
		dir = "enter"
	}
	sum := sha256.Sum256([]byte(ws + "\x00" + t.segment + "\x00" + itoa(t.version) + "\x00" + t.profile + "\x00" + dir + "\x00" + t.causeID))
	return hex.EncodeToString(sum[:16])
}

func itoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

// evaluator applies inputs to one profile's entries.
type evaluator struct {
	segs []*segments.Segment
	// evaluations counts condition evaluations (metrics).
	evaluations int
	errors      []error
	// dirty are the segments whose entry changed since reset.
	dirty map[string]bool
}

func (ev *evaluator) reset() {
	ev.dirty = map[string]bool{}
	ev.errors = nil
}

// entry returns the profile's entry for seg, creating (and seeding from the
// profile) one the profile never had, and reporting whether it is new or
// from another version of the segment (both need an evaluation).
func entry(entries map[string]*segstate.Entry, seg *segments.Segment, prof segments.Profile) (*segstate.Entry, bool) {
	e := entries[seg.ID]
	if e == nil || e.State == nil {
		e = &segstate.Entry{Version: seg.Version, State: &segments.State{}}
		if old := entries[seg.ID]; old != nil {
			e.In, e.Since = old.In, old.Since
		}
		seg.Seed(e.State, prof)
		entries[seg.ID] = e
		return e, true
	}
	if e.Version != seg.Version {
		e.Version = seg.Version
		seg.Seed(e.State, prof)
		return e, true
	}
	return e, false
}

// apply folds one input into entries (the profile's, keyed by segment) and
// returns the transitions, evaluated at now.
func (ev *evaluator) apply(entries map[string]*segstate.Entry, prof segments.Profile, in input, now time.Time) []transition {
	var out []transition
	for _, seg := range ev.segs {
		e, fresh := entry(entries, seg, prof)
		need := fresh
		if fresh {
			ev.dirty[seg.ID] = true
		}
		switch in.kind {
		case inEvent:
			if seg.Affected(in.event) && seg.Observe(e.State, in.event) {
				need = true
				ev.dirty[seg.ID] = true
			}
			// Every event moves last_seen and may bring traits.
			need = need || seg.ReadsProfile()
		case inProfile, inMerge:
			need = need || seg.ReadsProfile() || in.kind == inMerge
		case inTick:
			need = true
		}
		if !need {
			continue
		}
		out = append(out, ev.decide(e, seg, prof, in, now)...)
	}
	return out
}

func (ev *evaluator) decide(e *segstate.Entry, seg *segments.Segment, prof segments.Profile, in input, now time.Time) []transition {
	ev.evaluations++
	is, err := seg.Evaluate(e.State, prof, now)
	if err != nil {
		// A condition that fails at run time (a trait of an unexpected
		// type, say) keeps the profile where it was and is reported.
		ev.errors = append(ev.errors, err)
		return nil
	}
	if is == e.In {
		return nil
	}
	ev.dirty[seg.ID] = true
	e.In = is
	e.Since = 0
	if is {
		e.Since = now.UnixMilli()
	}
	return []transition{{segment: seg.ID, version: seg.Version, profile: prof.ID, enter: is, at: in.at, causeID: in.causeID}}
}

// merge folds the losers' entries into the survivor's: aggregates combine,
// and every loser exits the segments it was in (it no longer exists as a
// person). The survivor is evaluated afterwards by apply.
func mergeEntries(survivor map[string]*segstate.Entry, loserID string, loser map[string]*segstate.Entry, in input) []transition {
	var out []transition
	for id, le := range loser {
		if le.In {
			out = append(out, transition{segment: id, version: le.Version, profile: loserID, enter: false, at: in.at, causeID: in.causeID})
		}
		se := survivor[id]
		switch {
		case se == nil || se.State == nil:
			survivor[id] = &segstate.Entry{Version: le.Version, State: le.State}
		case le.State != nil:
			se.State = segments.MergeStates(se.State, le.State)
		}
	}
	return out
}

// exitAll is what an erased profile does: leave every segment.
func exitAll(pid string, entries map[string]*segstate.Entry, in input) []transition {
	var out []transition
	for id, e := range entries {
		if e.In {
			out = append(out, transition{segment: id, version: e.Version, profile: pid, enter: false, at: in.at, causeID: in.causeID})
		}
	}
	return out
}

// nextDeadline is the earliest instant any segment may change with no new
// input; zero when none.
func nextDeadline(segs []*segments.Segment, entries map[string]*segstate.Entry, now time.Time) time.Time {
	var best time.Time
	for _, seg := range segs {
		e := entries[seg.ID]
		if e == nil || e.State == nil {
			continue
		}
		if d, ok := seg.NextDeadline(e.State, now); ok && (best.IsZero() || d.Before(best)) {
			best = d
		}
	}
	return best
}

// toProto is a transition as it goes on cdp.segments.membership.
func toProto(ws string, t transition, now time.Time) *segmentv1.Membership {
	tr := segmentv1.Transition_TRANSITION_EXIT
	if t.enter {
		tr = segmentv1.Transition_TRANSITION_ENTER
	}
	return &segmentv1.Membership{
		MembershipId: membershipID(ws, t), WorkspaceId: ws, SegmentId: t.segment, SegmentVersion: t.version,
		ProfileId: t.profile, Transition: tr, OccurredAt: timestamp(t.at), EvaluatedAt: timestamp(now), CauseId: t.causeID,
	}
}
