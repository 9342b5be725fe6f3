package dedup

import "sync"

// Inflight holds the entries a stage decided to record but has not yet
// recorded, because the outputs they stand for are still waiting for
// Kafka's acknowledgement (the stage runner handles the next batch
// meanwhile, see pkg/stage). Seen answers from Redis only; Fill adds what
// is in flight, so a duplicate in the next batch is still recognised.
//
// It lives in memory only: when the process dies, the batches in flight
// were not committed and are delivered again, deciding afresh.
type Inflight struct {
	mu sync.Mutex
	m  map[ID]inflightEntry
}

type inflightEntry struct {
	origin string
	refs   int // batches holding it (the same delivery may be in several)
}

// Add marks entries as in flight. The first origin of an id wins, as with
// Record.
func (f *Inflight) Add(entries []Entry) {
	if len(entries) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[ID]inflightEntry{}
	}
	for _, e := range entries {
		ie, ok := f.m[e.ID]
		if !ok {
			ie.origin = e.Origin
		}
		ie.refs++
		f.m[e.ID] = ie
	}
}

// Done releases entries Add marked, once Record stored them.
func (f *Inflight) Done(entries []Entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range entries {
		ie, ok := f.m[e.ID]
		if !ok {
			continue
		}
		if ie.refs--; ie.refs <= 0 {
			delete(f.m, e.ID)
		} else {
			f.m[e.ID] = ie
		}
	}
}

// Fill sets seen[i] to the in-flight origin of ids[i] where Seen found
// none ("" ); ids Seen already answered (an origin, or InBatch) keep it.
func (f *Inflight) Fill(ids []ID, seen []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) == 0 {
		return
	}
	for i, id := range ids {
		if seen[i] != "" {
			continue
		}
		if ie, ok := f.m[id]; ok {
			seen[i] = ie.origin
		}
	}
}

// Len is the number of ids in flight.
func (f *Inflight) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}
