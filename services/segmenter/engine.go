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
	// profileUnchanged (inEvent): the stitcher says the event left the
	// profile's traits and identities as they were, so the segments that
	// read only those need not be evaluated for it (zero: it may have
	// changed them, and they are).
	profileUnchanged bool
	// profileVersion (inEvent): the profile's version after the event, as
	// the stitcher says (0: unknown); see profileCache.
	profileVersion int64
	losers         []string // inMerge: profiles absorbed
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
	ids   map[string]bool // of segs, made on first use
}

// configured reports whether id is one of the evaluator's segments.
func (ev *evaluator) configured(id string) bool {
	if ev.ids == nil {
		ev.ids = make(map[string]bool, len(ev.segs))
		for _, s := range ev.segs {
			ev.ids[s.ID] = true
		}
	}
	return ev.ids[id]
}

// reset readies the evaluator for another profile (its map is reused).
func (ev *evaluator) reset() {
	if ev.dirty == nil {
		ev.dirty = map[string]bool{}
	}
	clear(ev.dirty)
	ev.errors = nil
	ev.evaluations = 0
}

// entry returns the profile's entry for seg, creating (and seeding from the
// profile) one the profile never had, and reporting whether it is new or
// from another version of the segment (both need an evaluation).
func entry(p *segstate.Profile, seg *segments.Segment, prof segments.Profile) (*segstate.Entry, bool) {
	e := p.Get(seg.ID)
	if e == nil || e.State == nil {
		ne := &segstate.Entry{Version: seg.Version, State: &segments.State{}}
		if e != nil {
			ne.In, ne.Since = e.In, e.Since
		}
		seg.Seed(ne.State, prof)
		p.Set(seg.ID, ne)
		return ne, true
	}
	if e.Version != seg.Version {
		e.Version = seg.Version
		seg.Seed(e.State, prof)
		return e, true
	}
	return e, false
}

// apply folds one input into the profile's entries and returns the
// transitions, evaluated at now. Entries an input cannot move are neither
// decoded nor evaluated: an event, the segments whose aggregates it can
// change, those that read first or last seen (which every event moves)
// and, if the event may have changed the profile's traits or identities,
// those that read the profile; a profile change (a split), the segments
// that read the profile; merges and ticks, all.
func (ev *evaluator) apply(p *segstate.Profile, prof segments.Profile, in input, now time.Time) []transition {
	var out []transition
	for _, seg := range ev.segs {
		affected, reads := false, false
		switch in.kind {
		case inEvent:
			affected = seg.Affected(in.event)
			// A condition over the profile and now (a trial that ends at
			// a trait's date) is also looked at again at every event, as
			// well as at its recheck timer.
			reads = seg.ReadsSeen() || seg.ReadsProfile() && (!in.profileUnchanged || seg.ReadsNow())
			if !affected && !reads {
				if p.Has(seg.ID) {
					if v, ok := p.EntryVersion(seg.ID); ok && v == seg.Version {
						continue
					}
					// Made by another version of the segment (or not
					// readable without decoding): decided anew below,
					// so an edited segment reaches its members at their
					// next event rather than only through its backfill.
				} else if v, ok := seg.WhenEmpty(); ok && !v {
					// No entry, and the event moves nothing of this
					// segment: a fresh entry would stay empty (Seed fills
					// only aggregates over any event, which every event
					// affects) and answer WhenEmpty. When that is "not a
					// member", there is nothing to decide or keep.
					continue
				}
			}
		case inProfile:
			if !seg.ReadsProfile() && p.Has(seg.ID) {
				continue
			}
		}
		e, fresh := entry(p, seg, prof)
		need := fresh || in.kind != inEvent || reads
		if fresh {
			ev.dirty[seg.ID] = true
		}
		if affected && seg.Observe(e.State, in.event) {
			need = true
			ev.dirty[seg.ID] = true
		}
		if !need {
			continue
		}
		out = append(out, ev.decide(e, seg, prof, in, now)...)
	}
	return out
}

func (ev *evaluator) decide(e *segstate.Entry, seg *segments.Segment, prof segments.Profile, in input, now time.Time) []transition {
	var is bool
	var err error
	if v, ok := seg.WhenEmpty(); ok && e.Empty() {
		is = v // nothing observed yet: the answer is known without evaluating
	} else {
		ev.evaluations++
		is, err = seg.Evaluate(e.State, prof, now)
	}
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

// mergeEntries folds the loser's entries into the survivor's: aggregates
// combine, and the loser exits the segments it was in (it no longer exists
// as a person). The survivor is evaluated afterwards by apply.
func mergeEntries(survivor *segstate.Profile, loserID string, loser *segstate.Profile, in input) []transition {
	var out []transition
	for _, id := range loser.IDs() {
		le := loser.Get(id)
		if le == nil {
			continue
		}
		if le.In {
			out = append(out, transition{segment: id, version: le.Version, profile: loserID, enter: false, at: in.at, causeID: in.causeID})
		}
		se := survivor.Get(id)
		switch {
		case se == nil || se.State == nil:
			survivor.Set(id, &segstate.Entry{Version: le.Version, State: le.State})
		case le.State != nil:
			se.State = segments.MergeStates(se.State, le.State)
		}
	}
	return out
}

// exitAll is what an erased profile does: leave every segment.
func exitAll(pid string, p *segstate.Profile, in input) []transition {
	var out []transition
	for _, id := range p.IDs() {
		if e := p.Get(id); e != nil && e.In {
			out = append(out, transition{segment: id, version: e.Version, profile: pid, enter: false, at: in.at, causeID: in.causeID})
		}
	}
	return out
}

// nextDeadline is the earliest instant any segment may change with no new
// input (zero when none), and the per-segment deadlines that changed. An
// entry that was not decoded keeps its stored deadline unless that has
// passed, in which case it is decoded and asked again.
func nextDeadline(segs []*segments.Segment, p *segstate.Profile, now time.Time) (time.Time, map[string]int64) {
	nowMs := now.UnixMilli()
	best := int64(0)
	changed := map[string]int64{}
	for _, seg := range segs {
		stored := p.Due[seg.ID]
		if !p.Decoded(seg.ID) {
			if !p.Has(seg.ID) || stored == 0 {
				continue
			}
			if stored > nowMs {
				if best == 0 || stored < best {
					best = stored
				}
				continue
			}
		}
		e := p.Get(seg.ID)
		var d int64
		if e != nil && e.State != nil {
			if t, ok := seg.NextDeadline(e.State, now); ok {
				d = t.UnixMilli()
			}
		}
		if d != stored {
			changed[seg.ID] = d
		}
		if d != 0 && (best == 0 || d < best) {
			best = d
		}
	}
	if best == 0 {
		return time.Time{}, changed
	}
	return time.UnixMilli(best).UTC(), changed
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
