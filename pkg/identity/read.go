package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Profile is a profile as the graph holds it now.
type Profile struct {
	ID         string
	Identities []Identifier
	Traits     map[string]json.RawMessage
	Counters   map[string]int64
	FirstSeen  time.Time
	LastSeen   time.Time
	Version    int64
	// Merged are the profile ids absorbed into this one (lineage).
	Merged []string
	// Partial: read as ReadOptions.Partial asked, its own hash only.
	Partial bool
}

// ErrNotFound means no profile holds the identifier.
var ErrNotFound = errors.New("no profile holds that identifier")

// Lookup returns the profile holding id in workspace (the read path of the
// profile API).
func (g *Graph) Lookup(ctx context.Context, workspace string, id Identifier) (Profile, error) {
	p := Prefix(workspace)
	pid, err := g.rdb.Get(ctx, p+"id:"+id.String()).Result()
	if errors.Is(err, redis.Nil) {
		return Profile{}, ErrNotFound
	}
	if err != nil {
		return Profile{}, fmt.Errorf("looking up %s: %w", id, err)
	}
	return g.Profile(ctx, workspace, pid)
}

// Profile returns a profile by id, following merges to the survivor.
func (g *Graph) Profile(ctx context.Context, workspace, pid string) (Profile, error) {
	ps, err := g.Profiles(ctx, workspace, []string{pid})
	if err != nil {
		return Profile{}, err
	}
	p, ok := ps[pid]
	if !ok {
		return Profile{}, ErrNotFound
	}
	return p, nil
}

// Profiles reads several profiles at once, each followed through merges to
// its survivor, keyed by the id asked for; ids no profile has are absent.
// It costs one pipelined round trip (plus one per level of a merge chain)
// however many profiles are read.
func (g *Graph) Profiles(ctx context.Context, workspace string, pids []string) (map[string]Profile, error) {
	return g.ProfilesWith(ctx, workspace, pids, ReadOptions{})
}

// ReadOptions leave out parts of a profile a reader has no use for, so
// Redis sends (and the reader decodes) less: the segmenter evaluates
// traits, identities and times, never counters or merge history.
type ReadOptions struct {
	SkipCounters bool // Profile.Counters stays empty
	SkipMerged   bool // Profile.Merged stays empty
	// Partial, when set, names profiles of which only the profile's own
	// hash is wanted (times, version, where a merge sent it): the caller
	// holds their traits and identities already. Such a profile comes back
	// with Partial set and no Traits, Identities, Counters or Merged. A
	// profile merged away is followed to its survivor as always, and the
	// survivor read in full unless Partial names it too.
	Partial func(pid string) bool
}

// ProfilesWith is Profiles reading only what o asks for.
func (g *Graph) ProfilesWith(ctx context.Context, workspace string, pids []string, o ReadOptions) (map[string]Profile, error) {
	p := Prefix(workspace)
	// survivor[asked] is where asked lives now. Each round reads every
	// part of the candidates at once; a candidate whose hash names a
	// survivor (merged_into) is read again under that id next round.
	survivor := make(map[string]string, len(pids))
	todo := make([]string, 0, len(pids))
	for _, pid := range pids {
		if _, dup := survivor[pid]; !dup {
			survivor[pid] = pid
			todo = append(todo, pid)
		}
	}
	type read struct {
		h, traits, counts *redis.MapStringStringCmd
		ids, merged       *redis.StringSliceCmd
	}
	decoded := map[string]*Profile{}
	for hops := 0; len(todo) > 0; hops++ {
		if hops > 100 {
			return nil, fmt.Errorf("profile %s: merge chain too long", todo[0])
		}
		reads := map[string]*read{}
		pipe := g.rdb.Pipeline()
		for _, asked := range todo {
			pid := survivor[asked]
			if reads[pid] != nil || decoded[pid] != nil {
				continue
			}
			r := &read{h: pipe.HGetAll(ctx, p+"p:"+pid)}
			reads[pid] = r
			if o.Partial != nil && o.Partial(pid) {
				continue
			}
			r.ids, r.traits = pipe.SMembers(ctx, p+"p:"+pid+":ids"), pipe.HGetAll(ctx, p+"p:"+pid+":t")
			if !o.SkipCounters {
				r.counts = pipe.HGetAll(ctx, p+"p:"+pid+":c")
			}
			if !o.SkipMerged {
				r.merged = pipe.SMembers(ctx, p+"p:"+pid+":merged")
			}
		}
		if len(reads) > 0 {
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return nil, fmt.Errorf("reading profiles: %w", err)
			}
		}
		followed := map[string]string{} // merged-away id → its survivor
		for pid, r := range reads {
			h := r.h.Val()
			if into := h["merged_into"]; into != "" {
				followed[pid] = into
				continue
			}
			if len(h) == 0 {
				continue
			}
			prof := &Profile{ID: pid}
			ms := func(k string) time.Time { n, _ := strconv.ParseInt(h[k], 10, 64); return time.UnixMilli(n).UTC() }
			prof.FirstSeen, prof.LastSeen = ms("first"), ms("last")
			prof.Version, _ = strconv.ParseInt(h["ver"], 10, 64)
			if r.traits == nil {
				prof.Partial = true
				decoded[pid] = prof
				continue
			}
			prof.Traits, prof.Counters = map[string]json.RawMessage{}, map[string]int64{}
			for _, s := range r.ids.Val() {
				t, v, _ := strings.Cut(s, ":")
				prof.Identities = append(prof.Identities, Identifier{t, v})
			}
			sort.Slice(prof.Identities, func(i, j int) bool { return prof.Identities[i].String() < prof.Identities[j].String() })
			for k, v := range r.traits.Val() {
				prof.Traits[k] = json.RawMessage(v)
			}
			if r.counts != nil {
				for k, v := range r.counts.Val() {
					prof.Counters[k], _ = strconv.ParseInt(v, 10, 64)
				}
			}
			if r.merged != nil {
				prof.Merged = r.merged.Val()
				sort.Strings(prof.Merged)
			}
			decoded[pid] = prof
		}
		var next []string
		for _, asked := range todo {
			if into, ok := followed[survivor[asked]]; ok {
				survivor[asked] = into
				next = append(next, asked)
			}
		}
		todo = next
	}
	out := make(map[string]Profile, len(pids))
	for asked, pid := range survivor {
		if prof := decoded[pid]; prof != nil {
			out[asked] = *prof
		}
	}
	return out, nil
}

// BlockedMerge is one entry of a workspace's blocked-merge log: a link or
// merge that merge protection refused.
type BlockedMerge struct {
	At        time.Time // event time of the message
	MessageID string
	// ProfileID is the profile the message resolved to; What was kept
	// apart from it (an identifier "type:value" or a profile id).
	ProfileID string
	What      string
	Reason    string // Block…
}

// BlockedMerges returns the newest n entries of the workspace's
// blocked-merge log (at most MaxBlockedLog are kept), newest first.
func (g *Graph) BlockedMerges(ctx context.Context, workspace string, n int) ([]BlockedMerge, error) {
	if n <= 0 || n > MaxBlockedLog {
		n = MaxBlockedLog
	}
	raw, err := g.rdb.LRange(ctx, Prefix(workspace)+"blocked", 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("reading blocked merges of %s: %w", workspace, err)
	}
	out := make([]BlockedMerge, 0, len(raw))
	for _, s := range raw {
		var e struct {
			At      int64  `json:"at"`
			Msg     string `json:"msg"`
			Profile string `json:"profile"`
			What    string `json:"what"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			return nil, fmt.Errorf("decoding a blocked merge of %s: %w", workspace, err)
		}
		out = append(out, BlockedMerge{At: time.UnixMilli(e.At).UTC(), MessageID: e.Msg, ProfileID: e.Profile, What: e.What, Reason: e.Reason})
	}
	return out, nil
}
