package segments

import (
	"encoding/json"
	"slices"
	"time"
)

// Event is one resolved event as the segmenter sees it.
type Event struct {
	MessageID, Type, Name string
	Time                  time.Time
	Properties            []byte // JSON object

	props *eventProps // shared decoded properties (NewEvent)
}

// NewEvent returns ev set up to decode its properties at most once however
// many segments observe it (a zero Event decodes them per Observe).
func NewEvent(ev Event) Event {
	ev.props = &eventProps{raw: ev.Properties}
	return ev
}

// Profile is the profile the condition reads.
type Profile struct {
	ID         string
	Traits     map[string]json.RawMessage
	Identities []string // "type:value", e.g. "user_id:42"
	FirstSeen  time.Time
	LastSeen   time.Time
}

// State is one profile's aggregates for one segment. It is plain data meant
// to be stored as JSON (the segmenter keeps it in Redis, one value per
// profile and segment). It stays bounded: windowed aggregates hold at most
// one bucket per bucket width of their window, the rest a few numbers.
type State struct {
	// Watermark is the latest event time folded in (Unix ms); buckets that
	// ended more than their window before it are dropped.
	Watermark int64 `json:"wm,omitempty"`
	// Aggs is keyed by aggregate name.
	Aggs map[string]*AggState `json:"aggs,omitempty"`
}

// AggState is the state of one aggregate. Times are Unix milliseconds; 0
// means "never".
type AggState struct {
	// Hash fingerprints the aggregate's definition; state built by a
	// different definition (the segment was edited) is discarded.
	Hash string `json:"h"`
	// Buckets hold windowed counts and sums, sorted by start.
	Buckets []Bucket `json:"b,omitempty"`
	// Total holds all-time counts and sums.
	Total float64 `json:"t,omitempty"`
	// First and Last are the first and last matching event (first_seen,
	// last_seen, inactive) or the latest after event (absence).
	First int64 `json:"f,omitempty"`
	Last  int64 `json:"l,omitempty"`
	// Missing is the latest missing event (absence).
	Missing int64 `json:"m,omitempty"`
}

// Bucket is one time bucket: [Start, Start+width) in Unix ms.
type Bucket struct {
	Start int64   `json:"s"`
	Value float64 `json:"v"`
}

func (st *State) agg(a *aggregate) *AggState {
	if st == nil || st.Aggs == nil {
		return nil
	}
	as := st.Aggs[a.name]
	if as == nil || as.Hash != a.hash {
		return nil
	}
	return as
}

// aggForWrite returns the aggregate's state, resetting it when it was built
// by another definition.
func (st *State) aggForWrite(a *aggregate) *AggState {
	if st.Aggs == nil {
		st.Aggs = map[string]*AggState{}
	}
	as := st.Aggs[a.name]
	if as == nil || as.Hash != a.hash {
		as = &AggState{Hash: a.hash}
		st.Aggs[a.name] = as
	}
	return as
}

// add folds value v at time t into a bucket.
func (as *AggState) add(t, width int64, v float64) {
	start := floorDiv(t, width) * width
	i, found := slices.BinarySearchFunc(as.Buckets, start, func(b Bucket, s int64) int {
		switch {
		case b.Start < s:
			return -1
		case b.Start > s:
			return 1
		}
		return 0
	})
	if found {
		as.Buckets[i].Value += v
		return
	}
	as.Buckets = slices.Insert(as.Buckets, i, Bucket{Start: start, Value: v})
}

// prune drops buckets that ended at least `within` before ref: they can
// never count again for any evaluation at or after ref.
func (as *AggState) prune(ref, width, within int64) {
	n := 0
	for n < len(as.Buckets) && as.Buckets[n].Start+width+within <= ref {
		n++
	}
	if n > 0 {
		as.Buckets = slices.Delete(as.Buckets, 0, n)
	}
}

// windowSum sums the buckets that overlap (now-within, now].
func (as *AggState) windowSum(now, width, within int64) float64 {
	var sum float64
	for _, b := range as.Buckets {
		if b.Start+width+within > now && b.Start <= now {
			sum += b.Value
		}
	}
	return sum
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// MergeStates combines the states of two profiles being merged into one:
// counts and sums add, first times take the earliest, last times the
// latest. Aggregates present in both with different definitions keep a's.
// Neither input is modified; either may be nil.
func MergeStates(a, b *State) *State {
	out := &State{}
	for _, st := range []*State{a, b} {
		if st == nil {
			continue
		}
		out.Watermark = max(out.Watermark, st.Watermark)
		for name, as := range st.Aggs {
			if as == nil {
				continue
			}
			if out.Aggs == nil {
				out.Aggs = map[string]*AggState{}
			}
			cur := out.Aggs[name]
			if cur == nil {
				out.Aggs[name] = as.clone()
				continue
			}
			if cur.Hash != as.Hash {
				continue
			}
			cur.Total += as.Total
			cur.First = minNonZero(cur.First, as.First)
			cur.Last = max(cur.Last, as.Last)
			cur.Missing = max(cur.Missing, as.Missing)
			cur.Buckets = mergeBuckets(cur.Buckets, as.Buckets)
		}
	}
	return out
}

func (as *AggState) clone() *AggState {
	c := *as
	c.Buckets = slices.Clone(as.Buckets)
	return &c
}

func mergeBuckets(x, y []Bucket) []Bucket {
	out := make([]Bucket, 0, len(x)+len(y))
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case j == len(y) || (i < len(x) && x[i].Start < y[j].Start):
			out = append(out, x[i])
			i++
		case i == len(x) || y[j].Start < x[i].Start:
			out = append(out, y[j])
			j++
		default:
			out = append(out, Bucket{Start: x[i].Start, Value: x[i].Value + y[j].Value})
			i++
			j++
		}
	}
	return out
}

func minNonZero(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
