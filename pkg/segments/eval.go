package segments

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/interpreter"
)

// epoch is the value of a timestamp that was never set.
var epoch = time.Unix(0, 0).UTC()

// ceilMilli rounds t up to Unix milliseconds, so deadlines derived from it
// are never early.
func ceilMilli(t time.Time) int64 {
	ms := t.UnixMilli()
	if time.UnixMilli(ms).Before(t) {
		ms++
	}
	return ms
}

// Affected reports whether ev can change this segment's aggregates, so the
// stage observes and re-evaluates only the segments an event can move. It
// looks at the event name and type only (property filters are checked by
// Observe), so it may say true for an event a filter then rejects.
// Segments that read only the profile are never affected by events: the
// stage re-evaluates them on profile changes.
func (s *Segment) Affected(ev Event) bool {
	for _, a := range s.aggs {
		if a.match.matchesName(&ev) || (a.kind == kindAbsence && a.missing.matchesName(&ev)) {
			return true
		}
	}
	return false
}

// eventProps lazily decodes an event's properties once per Observe, or
// once per event when the event was made with NewEvent.
type eventProps struct {
	raw    []byte
	m      map[string]any
	parsed bool
}

func (p *eventProps) get() map[string]any {
	if !p.parsed {
		p.parsed = true
		if len(p.raw) > 0 {
			_ = json.Unmarshal(p.raw, &p.m) // malformed properties: filters see none
		}
		if p.m == nil {
			p.m = map[string]any{}
		}
	}
	return p.m
}

func (m *matcher) matches(ev *Event, props *eventProps) bool {
	if !m.matchesName(ev) {
		return false
	}
	if m.where == nil {
		return true
	}
	out, _, err := m.where.Eval(map[string]any{"properties": props.get()})
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}

// Observe folds one event into st and reports whether any aggregate
// changed. Late events land in the bucket of their own time; an event too
// old to count in any window (older than the window before the latest event
// seen) changes nothing. Redelivered events are not deduplicated here: the
// stage dedups by message id before calling Observe.
//
// The caller should bound event times to the present (plus clock skew): a
// far-future event moves the watermark and drops buckets early.
func (s *Segment) Observe(st *State, ev Event) bool {
	if st == nil {
		return false
	}
	// Forget aggregates this version of the segment no longer has.
	for name := range st.Aggs {
		if !s.hasAgg(name) {
			delete(st.Aggs, name)
		}
	}
	t := ev.Time.UnixMilli()
	tUp := ceilMilli(ev.Time)
	if t > st.Watermark {
		st.Watermark = t
	}
	props := ev.props
	if props == nil {
		props = &eventProps{raw: ev.Properties}
	}
	changed := false
	for _, a := range s.aggs {
		switch a.kind {
		case kindCount, kindSum:
			if !a.match.matches(&ev, props) {
				break
			}
			v := 1.0
			if a.kind == kindSum {
				var ok bool
				if v, ok = lookupNumber(props.get(), a.path); !ok || v == 0 {
					break
				}
			}
			as := st.aggForWrite(a)
			if !a.windowed() {
				as.Total += v
				changed = true
				break
			}
			width, within := a.width.Milliseconds(), a.within.Milliseconds()
			if floorDiv(t, width)*width+width+within <= st.Watermark {
				break // too late to count in any window still open
			}
			as.add(t, width, v)
			changed = true
		case kindFirstSeen, kindLastSeen, kindInactive:
			if !a.match.matches(&ev, props) {
				break
			}
			as := st.aggForWrite(a)
			ts := t
			if a.kind == kindInactive {
				ts = tUp
			}
			if a.kind == kindFirstSeen && (as.First == 0 || ts < as.First) {
				as.First = ts
				changed = true
			}
			if a.kind != kindFirstSeen && ts > as.Last {
				as.Last = ts
				changed = true
			}
		case kindAbsence:
			if a.match.matches(&ev, props) {
				if as := st.aggForWrite(a); tUp > as.Last {
					as.Last = tUp
					changed = true
				}
			}
			if a.missing.matches(&ev, props) {
				if as := st.aggForWrite(a); tUp > as.Missing {
					as.Missing = tUp
					changed = true
				}
			}
		}
	}
	for _, a := range s.aggs {
		if a.windowed() {
			if as := st.agg(a); as != nil {
				as.prune(st.Watermark, a.width.Milliseconds(), a.within.Milliseconds())
			}
		}
	}
	return changed
}

func (s *Segment) hasAgg(name string) bool {
	_, ok := s.byName[name]
	return ok
}

// lookupNumber follows a dot path into properties; numbers and numeric
// strings count, anything else does not.
func lookupNumber(m map[string]any, path []string) (float64, bool) {
	var cur any = m
	for _, p := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return 0, false
			}
			cur = c[i]
		default:
			return 0, false
		}
	}
	var v float64
	switch c := cur.(type) {
	case float64:
		v = c
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(c), 64)
		if err != nil {
			return 0, false
		}
		v = f
	default:
		return 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// value is an aggregate's value at now (Unix ms), typed as declared to CEL.
func (a *aggregate) value(st *State, now int64) any {
	as := st.agg(a)
	if as == nil {
		as = &AggState{}
	}
	switch a.kind {
	case kindCount, kindSum:
		v := as.Total
		if a.windowed() {
			v = as.windowSum(now, a.width.Milliseconds(), a.within.Milliseconds())
		}
		if a.kind == kindCount {
			return int64(math.Round(v))
		}
		return v
	case kindFirstSeen:
		return msTime(as.First)
	case kindLastSeen:
		return msTime(as.Last)
	case kindAbsence:
		return as.Last != 0 && as.Missing < as.Last && now >= as.Last+a.within.Milliseconds()
	case kindInactive:
		return as.Last != 0 && now >= as.Last+a.within.Milliseconds()
	}
	return nil
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return epoch
	}
	return time.UnixMilli(ms).UTC()
}

func profileTime(t time.Time) time.Time {
	if t.IsZero() {
		return epoch
	}
	return t.UTC()
}

// Evaluate decides whether the profile is in the segment at now. A condition
// that reads a missing trait or property is false (guard with has() to
// express "absent"); other evaluation errors return false and the error.
func (s *Segment) Evaluate(st *State, p Profile, now time.Time) (bool, error) {
	act := &activation{s: s, st: st, p: &p, now: now}
	out, _, err := s.prg.Eval(act)
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "no such key") || strings.Contains(msg, "no such attribute") {
			return false, nil
		}
		return false, &EvalError{Segment: s.ID, Profile: p.ID, Err: err}
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, &EvalError{Segment: s.ID, Profile: p.ID, Err: fmt.Errorf("condition yielded %v, not a bool", out.Type())}
	}
	return b, nil
}

// EvalError is a condition that failed at run time for one profile.
type EvalError struct {
	Segment, Profile string
	Err              error
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("evaluating segment %s for profile %s: %v", e.Segment, e.Profile, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// activation resolves the condition's variables on demand, so a condition
// that never reads traits does not pay for decoding them.
type activation struct {
	s   *Segment
	st  *State
	p   *Profile
	now time.Time
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "traits":
		traits := make(map[string]any, len(a.p.Traits))
		for k, raw := range a.p.Traits {
			var v any
			if err := json.Unmarshal(raw, &v); err == nil { // an undecodable trait reads as absent
				traits[k] = v
			}
		}
		return traits, true
	case "identities":
		if a.p.Identities == nil {
			return []string{}, true
		}
		return a.p.Identities, true
	case "first_seen":
		return profileTime(a.p.FirstSeen), true
	case "last_seen":
		return profileTime(a.p.LastSeen), true
	case "now":
		return a.now.UTC(), true
	}
	if agg, ok := a.s.byName[name]; ok {
		return agg.value(a.st, a.now.UnixMilli()), true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// NextDeadline returns the earliest instant after now at which the answer
// may change with no new event: a bucket leaving (or a future-dated bucket
// entering) a window, an absence or inactivity period running out, or, when
// the condition reads `now` directly, the recheck interval. The stage
// schedules a durable timer for it and calls Evaluate then. false means
// nothing is pending: only a new event or profile change can move the
// segment.
func (s *Segment) NextDeadline(st *State, now time.Time) (time.Time, bool) {
	nowMs := now.UnixMilli()
	best := int64(math.MaxInt64)
	consider := func(d int64) {
		if d > nowMs && d < best {
			best = d
		}
	}
	for _, a := range s.aggs {
		as := st.agg(a)
		if as == nil {
			continue
		}
		within := a.within.Milliseconds()
		switch a.kind {
		case kindCount, kindSum:
			if !a.windowed() {
				continue
			}
			width := a.width.Milliseconds()
			for _, b := range as.Buckets {
				if b.Start > nowMs {
					consider(b.Start)
				} else {
					consider(b.Start + width + within)
				}
			}
		case kindAbsence:
			if as.Last != 0 && as.Missing < as.Last {
				consider(as.Last + within)
			}
		case kindInactive:
			if as.Last != 0 {
				consider(as.Last + within)
			}
		}
	}
	var d time.Time
	if best != math.MaxInt64 {
		d = time.UnixMilli(best).UTC()
	}
	if s.readsNow {
		if r := now.Add(s.recheck).UTC(); d.IsZero() || r.Before(d) {
			d = r
		}
	}
	return d, !d.IsZero()
}

// Seed fills, from the profile alone, the aggregates that the profile
// already answers: first_seen, last_seen and inactive over any event (no
// event, type or where) take the profile's first and last seen. The stage
// calls it when backfilling a new segment, so "dormant" holds for profiles
// last seen long ago without replaying their history. Windowed counts and
// sums are not seeded: they need the events (replay them through Observe).
// It reports whether the state changed.
func (s *Segment) Seed(st *State, p Profile) bool {
	if st == nil {
		return false
	}
	changed := false
	for _, a := range s.aggs {
		if a.match.event != "" || a.match.typ != "" || a.match.where != nil {
			continue
		}
		switch a.kind {
		case kindFirstSeen:
			if !p.FirstSeen.IsZero() {
				as := st.aggForWrite(a)
				if t := p.FirstSeen.UnixMilli(); as.First == 0 || t < as.First {
					as.First, changed = t, true
				}
			}
		case kindLastSeen, kindInactive:
			if !p.LastSeen.IsZero() {
				as := st.aggForWrite(a)
				t := p.LastSeen.UnixMilli()
				if a.kind == kindInactive {
					t = ceilMilli(p.LastSeen)
				}
				if t > as.Last {
					as.Last, changed = t, true
				}
			}
		}
	}
	return changed
}
