// Package segstate is the segmenter's live state in Redis: per profile, the
// state of every segment's aggregates and whether the profile is in it; the
// transitions not yet acknowledged by Kafka; and the durable timers that make
// time-driven transitions (abandoned cart, dormant) fire when they are due.
// The API reads a profile's current segments from here.
//
// Redis layout, every key under the workspace hash tag like pkg/identity's,
// so one script touches one Cluster slot:
//
//	fp:{ws}:sg:p:<pid>    HASH  v → version, bumped by every write (optimistic concurrency)
//	                            s:<segment id> → Entry JSON: segment version, in, since, aggregate state
//	                            d:<segment id> → that segment's next deadline (Unix ms), so the
//	                            profile's timer is known without decoding every entry
//	                            w:<topic>/<partition> → highest offset applied (redelivery detection)
//	                            into → survivor, when the profile was merged away
//	fp:{ws}:sg:pe:<pid>   HASH  <topic>/<partition>/<offset> → Pending: transitions written here
//	                            before Kafka acknowledged them, emitted again on redelivery
//	fp:{ws}:sg:timers     ZSET  pid → when its next timer is due (Unix ms); while an
//	                            instance holds it, when that instance's lease runs out
//	fp:{ws}:sg:bf         HASH  <segment>@<version> → backfill progress: SCAN cursor or "done"
//	fp:{ws}:sg:bfl:<segment>@<version>  STRING  backfill lease holder (SET NX PX)
//
// Writes go through one Lua script (Commit) that checks the version of
// every profile it touches, so two instances that raced on a profile (a
// rebalance, a merge of profiles owned by different partitions) cannot both
// win: the loser reloads and recomputes.
//
// Redis Cluster: keys of one workspace share a slot, so a workspace's
// segment state lives on one shard; its ceiling is that shard's (roughly
// 80 k simple writes/s on the 2-core baseline, a batch costing two round
// trips plus one write per profile).
package segstate

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/segments"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// Entry is one profile's standing in one segment.
type Entry struct {
	// Version of the segment that computed it; a new version re-evaluates
	// (and keeps the aggregates whose definition did not change).
	Version uint32 `json:"ver"`
	In      bool   `json:"in"`
	// Since is when the profile entered (Unix ms), 0 when not in.
	Since int64           `json:"since,omitempty"`
	State *segments.State `json:"st,omitempty"`
}

// Profile is one profile's segment state as loaded. Entries are decoded
// lazily (Get): an event usually touches a few of a profile's segments, so
// the others are neither decoded nor written back.
type Profile struct {
	ID      string
	Version int64
	// Entries are the decoded (or new) entries by segment id.
	Entries map[string]*Entry
	raw     map[string]string
	stored  map[string]bool // entries the hash held when loaded
	// Due is each segment's next deadline (Unix ms) as last written.
	Due map[string]int64
	// Watermarks are the highest offset applied per "<topic>/<partition>".
	Watermarks map[string]int64
	// MergedInto is the survivor when this profile was merged away.
	MergedInto string
}

// NewProfile is an empty profile (tests, and profiles never seen).
func NewProfile(id string) *Profile {
	return &Profile{ID: id, Entries: map[string]*Entry{}, raw: map[string]string{}, stored: map[string]bool{}, Due: map[string]int64{}, Watermarks: map[string]int64{}}
}

// Get returns the entry of a segment, decoding it on first use; nil when
// the profile has none. A corrupt entry reads as none (it starts afresh).
func (p *Profile) Get(id string) *Entry {
	if e, ok := p.Entries[id]; ok {
		return e
	}
	r, ok := p.raw[id]
	if !ok {
		return nil
	}
	delete(p.raw, id)
	e := &Entry{}
	if decodeEntry([]byte(r), e) != nil {
		return nil
	}
	p.Entries[id] = e
	return e
}

// EntryVersion reports the segment version a profile's entry was made by,
// reading no more of a stored entry than its first field; ok is false
// when there is no entry or its version cannot be told without decoding
// (an entry stored as JSON, a corrupt one).
func (p *Profile) EntryVersion(id string) (version uint32, ok bool) {
	if e, ok := p.Entries[id]; ok {
		if e == nil {
			return 0, false
		}
		return e.Version, true
	}
	r, ok := p.raw[id]
	if !ok {
		return 0, false
	}
	return entryVersion(r)
}

// Has reports whether the profile has an entry for the segment, without
// decoding it.
func (p *Profile) Has(id string) bool {
	if _, ok := p.Entries[id]; ok {
		return true
	}
	_, ok := p.raw[id]
	return ok
}

// Stored reports whether the profile's hash held an entry for the segment
// when it was loaded.
func (p *Profile) Stored(id string) bool { return p.stored[id] }

// Empty reports whether an entry carries nothing worth storing: not in the
// segment and no aggregate state (reading it back would give a fresh one).
func (e *Entry) Empty() bool {
	return !e.In && (e.State == nil || (len(e.State.Aggs) == 0))
}

// Decoded reports whether the segment's entry was decoded (or set).
func (p *Profile) Decoded(id string) bool { _, ok := p.Entries[id]; return ok }

// Set replaces (or adds) a segment's entry.
func (p *Profile) Set(id string, e *Entry) {
	delete(p.raw, id)
	p.Entries[id] = e
}

// IDs lists every segment the profile has an entry for, sorted.
func (p *Profile) IDs() []string {
	out := make([]string, 0, len(p.Entries)+len(p.raw))
	for id := range p.Entries {
		out = append(out, id)
	}
	for id := range p.raw {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Clear forgets every entry (erased or merged away).
func (p *Profile) Clear() {
	p.Entries, p.raw, p.Due = map[string]*Entry{}, map[string]string{}, map[string]int64{}
}

// Applied reports whether the message at topic/partition/offset was
// already applied to this profile.
func (p *Profile) Applied(topic string, partition int, offset int64) bool {
	w, ok := p.Watermarks[Cause(topic, partition)]
	return ok && offset <= w
}

// Cause names a partition: "<topic>/<partition>".
func Cause(topic string, partition int) string { return topic + "/" + strconv.Itoa(partition) }

// PendingField names one message's pending transitions.
func PendingField(topic string, partition int, offset int64) string {
	return Cause(topic, partition) + "/" + strconv.FormatInt(offset, 10)
}

// Store reads and writes the state.
type Store struct{ rdb redis.UniversalClient }

func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

func prefix(ws string) string                { return "fp:{" + ws + "}:sg:" }
func profileKey(ws, pid string) string       { return prefix(ws) + "p:" + pid }
func pendingKey(ws, pid string) string       { return prefix(ws) + "pe:" + pid }
func timersKey(ws string) string             { return prefix(ws) + "timers" }
func backfillKey(ws string) string           { return prefix(ws) + "bf" }
func backfillLeaseKey(ws, seg string) string { return prefix(ws) + "bfl:" + seg }

// Load reads the state of profiles in one round trip. A profile never seen
// comes back empty (version 0).
func (s *Store) Load(ctx context.Context, ws string, pids []string) (map[string]*Profile, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(pids))
	for i, pid := range pids {
		cmds[i] = pipe.HGetAll(ctx, profileKey(ws, pid))
	}
	if len(pids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("loading segment state: %w", err)
		}
	}
	out := make(map[string]*Profile, len(pids))
	for i, pid := range pids {
		p, err := decodeProfile(pid, cmds[i].Val())
		if err != nil {
			return nil, err
		}
		out[pid] = p
	}
	return out, nil
}

func decodeProfile(pid string, h map[string]string) (*Profile, error) {
	// Most fields are entries (s:) and deadlines (d:), about as many of
	// each: sized once, the maps do not grow field by field.
	n := len(h)/2 + 1
	p := &Profile{ID: pid, Entries: make(map[string]*Entry, 8), raw: make(map[string]string, n), stored: make(map[string]bool, n),
		Due: make(map[string]int64, n), Watermarks: map[string]int64{}}
	for k, v := range h {
		switch {
		case k == "v":
			p.Version, _ = strconv.ParseInt(v, 10, 64)
		case k == "into":
			p.MergedInto = v
		case strings.HasPrefix(k, "s:"):
			p.raw[k[2:]] = v
			p.stored[k[2:]] = true
		case strings.HasPrefix(k, "d:"):
			p.Due[k[2:]], _ = strconv.ParseInt(v, 10, 64)
		case strings.HasPrefix(k, "w:"):
			p.Watermarks[k[2:]], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return p, nil
}

// Pending returns the transitions recorded for the given pending fields
// (see PendingField) of a profile.
func (s *Store) Pending(ctx context.Context, ws, pid string, fields []string) ([]*segmentv1.Membership, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, pendingKey(ws, pid), fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("reading pending transitions: %w", err)
	}
	var out []*segmentv1.Membership
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var pe segmentv1.Pending
		if err := proto.Unmarshal([]byte(str), &pe); err != nil {
			return nil, fmt.Errorf("pending transitions of profile %s are corrupt: %w", pid, err)
		}
		for _, e := range pe.Entries {
			out = append(out, e.Memberships...)
		}
	}
	return out, nil
}

// Write is the new state of one profile.
type Write struct {
	ProfileID string
	// ExpectVersion is the version Load returned; the write fails (a
	// conflict) when someone else wrote in between.
	ExpectVersion int64
	Entries       map[string]*Entry // segments to set
	Delete        []string          // segments to forget
	// Due sets segments' next deadlines (Unix ms; 0 forgets one).
	Due        map[string]int64
	Watermarks map[string]int64 // "<topic>/<partition>" → offset
	MergedInto string
	// Pending transitions by PendingField, kept until Ack.
	Pending map[string][]*segmentv1.Membership
	// Timer is when the profile's next timer is due; zero removes it.
	Timer time.Time
	// Wipe deletes the profile's state entirely (erased or merged away and
	// nothing left to keep); Entries etc. are then ignored except MergedInto.
	Wipe bool
}

//go:embed commit.lua
var commitLua string

var commitScript = redis.NewScript(commitLua)

// ErrConflict means another writer changed one of the profiles since Load.
var ErrConflict = errors.New("segment state changed concurrently")

// Commit applies writes to the profiles of one workspace atomically: all or
// none, and none when any profile's version moved since Load
// (ErrConflict). Writes that touch several profiles (merges) go in one call.
func (s *Store) Commit(ctx context.Context, ws string, writes ...Write) error {
	keys, args, err := commitArgs(ws, writes)
	if err != nil {
		return err
	}
	n, err := commitScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		return fmt.Errorf("writing segment state: %w", err)
	}
	if n == 0 {
		return ErrConflict
	}
	return nil
}

// CommitMany runs independent Commits (each its own atomic unit) in one
// pipelined round trip; the result holds each one's error (ErrConflict or
// nil), in order.
func (s *Store) CommitMany(ctx context.Context, ws string, groups [][]Write) ([]error, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(groups))
	for i, g := range groups {
		keys, args, err := commitArgs(ws, g)
		if err != nil {
			return nil, err
		}
		cmds[i] = commitScript.EvalSha(ctx, pipe, keys, args...)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	_, err := pipe.Exec(ctx)
	if err != nil && isNoScript(err) {
		// Redis lost its script cache (restart): load it and run again.
		if err := commitScript.Load(ctx, s.rdb).Err(); err != nil {
			return nil, fmt.Errorf("loading segment state script: %w", err)
		}
		return s.CommitMany(ctx, ws, groups)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		for _, c := range cmds {
			if c.Err() != nil && !isNoScript(c.Err()) {
				return nil, fmt.Errorf("writing segment state: %w", c.Err())
			}
		}
		return nil, fmt.Errorf("writing segment state: %w", err)
	}
	out := make([]error, len(groups))
	for i, c := range cmds {
		if n, _ := c.Int(); n == 0 {
			out[i] = ErrConflict
		}
	}
	return out, nil
}

func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// commitArgs encodes writes for commit.lua:
// KEYS = timers, then per profile its state and pending hashes.
// ARGV = number of profiles, then per profile: pid, expected version,
// timer ms (0 removes), wipe (0/1), then counts and items of: fields to set
// (name, value pairs), fields to delete, pending fields to set (pairs).
func commitArgs(ws string, writes []Write) ([]string, []any, error) {
	keys := []string{timersKey(ws)}
	args := []any{len(writes)}
	for _, w := range writes {
		if w.ProfileID == "" {
			return nil, nil, errors.New("segment state write without a profile id")
		}
		keys = append(keys, profileKey(ws, w.ProfileID), pendingKey(ws, w.ProfileID))
		var timer int64
		if !w.Timer.IsZero() {
			timer = w.Timer.UnixMilli()
		}
		wipe := 0
		if w.Wipe {
			wipe = 1
		}
		var set []any
		if w.MergedInto != "" {
			set = append(set, "into", w.MergedInto)
		}
		if !w.Wipe {
			var buf []byte
			for _, id := range sortedKeys(w.Entries) {
				buf = encodeEntry(buf[:0], w.Entries[id])
				set = append(set, "s:"+id, string(buf))
			}
			for _, c := range sortedKeys(w.Watermarks) {
				set = append(set, "w:"+c, w.Watermarks[c])
			}
		}
		var del []any
		for _, id := range w.Delete {
			del = append(del, "s:"+id, "d:"+id)
		}
		if !w.Wipe {
			for _, id := range sortedKeys(w.Due) {
				if d := w.Due[id]; d > 0 {
					set = append(set, "d:"+id, d)
				} else {
					del = append(del, "d:"+id)
				}
			}
		}
		var pend []any
		for _, f := range sortedKeys(w.Pending) {
			b, err := proto.Marshal(&segmentv1.Pending{Entries: []*segmentv1.Pending_Entry{{Cause: f, Memberships: w.Pending[f]}}})
			if err != nil {
				return nil, nil, err
			}
			pend = append(pend, f, string(b))
		}
		args = append(args, w.ProfileID, w.ExpectVersion, timer, wipe, len(set)/2)
		args = append(args, set...)
		args = append(args, len(del))
		args = append(args, del...)
		args = append(args, len(pend)/2)
		args = append(args, pend...)
	}
	return keys, args, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Ack forgets pending transitions once Kafka acknowledged them.
func (s *Store) Ack(ctx context.Context, ws string, pending map[string][]string) error {
	if len(pending) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for pid, fields := range pending {
		if len(fields) > 0 {
			pipe.HDel(ctx, pendingKey(ws, pid), fields...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("forgetting acknowledged transitions: %w", err)
	}
	return nil
}

// Memberships returns the segments a profile is in now, sorted by id (the
// API's read path).
func (s *Store) Memberships(ctx context.Context, ws, pid string) ([]Membership, error) {
	h, err := s.rdb.HGetAll(ctx, profileKey(ws, pid)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading segments of %s: %w", pid, err)
	}
	p, err := decodeProfile(pid, h)
	if err != nil {
		return nil, err
	}
	var out []Membership
	for _, id := range p.IDs() {
		if e := p.Get(id); e != nil && e.In {
			out = append(out, Membership{SegmentID: id, Version: e.Version, Since: time.UnixMilli(e.Since).UTC()})
		}
	}
	return out, nil
}

// Membership is one segment a profile is in.
type Membership struct {
	SegmentID string    `json:"segment_id"`
	Version   uint32    `json:"version"`
	Since     time.Time `json:"since"`
}
