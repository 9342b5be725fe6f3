// Package identity is the identity graph: typed identifiers (user_id,
// anonymous_id, email, phone, external ids) each resolving to one canonical
// profile, kept in Redis and changed only by one Lua script per event, so
// several stitcher instances can resolve the same person at once and a
// redelivered event is a no-op.
//
// Redis layout, every key under the workspace hash tag (one Cluster slot per
// workspace, so the script touches a single shard):
//
//	fp:{ws}:id:<type>:<value>   STRING profile id owning the identifier
//	fp:{ws}:p:<pid>             HASH first, last (event-time ms), ver; for a merged-away
//	                            profile: merged_into, merged_by, merged_at (lineage)
//	fp:{ws}:p:<pid>:ids         SET "<type>:<value>"
//	fp:{ws}:p:<pid>:t           HASH trait → JSON value
//	fp:{ws}:p:<pid>:tt          HASH trait → event time (ms) of its value (last write wins)
//	fp:{ws}:p:<pid>:c           HASH counter ("track:Order Completed", "identify", …) → n
//	fp:{ws}:p:<pid>:e           HASH "<identA>|<identB>" → "<message id>|<ms>": the evidence
//	                            of every link, kept so a wrong link can be undone later
//	fp:{ws}:p:<pid>:merged      SET profile ids merged into this one
//	fp:{ws}:m:<message id>      STRING the result of that event (idempotency marker, TTL)
//	fp:{ws}:profiles            SET ids of the live profiles (ScanProfiles: backfills)
//	fp:{ws}:i:<type>:<value>    HASH what events anchored on this identifier brought: t:<trait> →
//	                            JSON, tt:<trait> → ms, c:<counter> → n, first, last (so a split
//	                            can rebuild each side; the anchor is the event's most trusted
//	                            identifier on the profile)
//	fp:{ws}:deny:<type>:<value> SET identifiers an operator cut from this one (Unlink): never
//	                            linked again, directly or by a merge
//
// A split (Unlink) also writes split_from, split_by, split_at on the new
// profile's hash.
//
// # Redis Cluster
//
// The plan, and what holds today:
//
//   - Every key of a workspace carries the hash tag {ws}, so a workspace
//     lives in one slot and every script (resolve, unlink) runs on one
//     shard, atomically; the services take go-redis UniversalClient, so one
//     address is a single node and several are a cluster (FP_REDIS_ADDR).
//   - Workspaces spread over the shards; resharding moves whole slots, so
//     whole workspaces, online (Redis moves keys; scripts retry on ASK).
//   - One workspace's ceiling is one shard's: measured with
//     deploy/bench/stitcher.sh on the 2-core box, ~27 commands per event
//     (inside one script; one round trip per batch of 500) and ~20 k
//     events/s against ~0.9 M simple commands/s from redis-benchmark.
//   - A workspace larger than one shard would need its graph split by a
//     sub-tag (e.g. the hash of the most trusted identifier), making
//     cross-sub-tag merges a two-step protocol (link record, then move) —
//     not built; until then, give the biggest workspaces a dedicated
//     cluster or shard.
//
// Merge protection: a per-type limit on identifiers per profile (Segment's
// defaults: one user_id, five of every other type) applies to linking and to
// merging alike, so an anonymous id seen with two different user ids (a
// shared device) never glues the two people together; blocked values
// ("null", "anonymous", "0", …) are never identifiers at all.
package identity

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

//go:embed resolve.lua
var resolveLua string

var resolveScript = redis.NewScript(resolveLua)

// Identifier is one typed identifier.
type Identifier struct{ Type, Value string }

func (i Identifier) String() string { return i.Type + ":" + i.Value }

// Bounds of one profile. Beyond them data is dropped (and counted in
// Result.Dropped), never an error: a runaway source cannot grow a profile
// without limit or make the stitcher fail.
const (
	MaxTraits        = 500      // traits per profile; a new key beyond it is dropped
	MaxTraitBytes    = 16 << 10 // bytes of one trait's JSON value; larger values are dropped
	MaxTraitKeyBytes = 256      // bytes of a trait name
	MaxCounters      = 200      // distinct counters ("track:<event>") per profile
)

// Config is a workspace's merge protection.
type Config struct {
	// Limits per identifier type; types not listed get DefaultLimit.
	Limits       map[string]int
	DefaultLimit int
	// Priorities orders identifier types from most to least trusted (the
	// profile of the most trusted known identifier survives a merge);
	// types not listed keep the built-in order after the listed ones.
	Priorities []string
	// Blocked are values never used as identifiers in this workspace (on
	// top of the built-in placeholders), compared case-insensitively.
	Blocked []string
	// MarkerTTL is how long a processed message id is remembered, i.e. how
	// late a redelivery can come and still be a no-op.
	MarkerTTL time.Duration
}

// DefaultConfig is Segment's identity resolution default: one user_id and
// five of every other identifier type per profile.
func DefaultConfig() Config {
	return Config{Limits: map[string]int{"user_id": 1}, DefaultLimit: 5, MarkerTTL: 7 * 24 * time.Hour}
}

// Update is what one event brings to the graph.
type Update struct {
	Workspace   string
	MessageID   string
	Time        time.Time
	Identifiers []Identifier // see Identifiers; most trusted first
	Traits      map[string]json.RawMessage
	Counter     string // e.g. "track:Order Completed"
	// Config overrides the graph's merge protection for this update (the
	// workspace's own settings); nil uses the graph's.
	Config *Config
}

// Prepare applies the workspace's blocked values and priorities to an
// event's identifiers (from Identifiers, most trusted first).
func (c Config) Prepare(ids []Identifier) []Identifier {
	if len(c.Blocked) == 0 && len(c.Priorities) == 0 {
		return ids
	}
	out := make([]Identifier, 0, len(ids))
	for _, id := range ids {
		blocked := false
		for _, b := range c.Blocked {
			if strings.EqualFold(strings.TrimSpace(id.Value), strings.TrimSpace(b)) {
				blocked = true
				break
			}
		}
		if !blocked {
			out = append(out, id)
		}
	}
	rank := func(t string) int {
		for i, p := range c.Priorities {
			if p == t {
				return i
			}
		}
		return len(c.Priorities)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].Type) < rank(out[j].Type) })
	return out
}

// TraitChange is one trait that took a new value.
type TraitChange struct {
	Key      string
	Old, New json.RawMessage // Old is empty when the trait was absent
}

// Result is what the event did to the graph.
type Result struct {
	ProfileID string
	Version   int64
	Created   bool
	Added     []Identifier
	// Merged are profiles absorbed into ProfileID.
	Merged []string
	// Blocked are identifiers or profiles merge protection kept apart.
	Blocked      []string
	TraitChanges []TraitChange
	// Dropped counts traits and counters the profile's bounds refused.
	Dropped int
}

// Graph applies updates to the Redis identity graph.
type Graph struct {
	rdb redis.UniversalClient
	cfg Config
}

func New(rdb redis.UniversalClient, cfg Config) *Graph { return &Graph{rdb: rdb, cfg: cfg} }

// Prefix is the key prefix of a workspace.
func Prefix(workspace string) string { return "fp:{" + workspace + "}:" }

// Apply resolves and applies one event atomically. Applying the same message
// id again returns the first result and changes nothing. The script is sent
// again by go-redis when Redis lost it (NOSCRIPT after a restart).
func (g *Graph) Apply(ctx context.Context, u Update) (Result, error) {
	if u.Workspace == "" || u.MessageID == "" {
		return Result{}, errors.New("identity update needs a workspace and a message id")
	}
	out, err := resolveScript.Run(ctx, g.rdb, []string{Prefix(u.Workspace) + "id"}, g.args(u)...).Text()
	if err != nil {
		return Result{}, fmt.Errorf("resolving %s: %w", u.MessageID, err)
	}
	return decodeResult(out)
}

func newProfileID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return "p_" + uuid.NewString()
	}
	return "p_" + id.String()
}

// raw is the script's JSON; cjson encodes an empty array as {}.
type raw struct {
	Profile string             `json:"profile"`
	Version int64              `json:"version"`
	Created bool               `json:"created"`
	Added   flexList[string]   `json:"added"`
	Merged  flexList[string]   `json:"merged"`
	Blocked flexList[string]   `json:"blocked"`
	Traits  flexList[[]string] `json:"traits"`
	Dropped int                `json:"dropped"`
}

type flexList[T any] []T

func (l *flexList[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "{}" {
		*l = nil
		return nil
	}
	return json.Unmarshal(b, (*[]T)(l))
}

func decodeResult(s string) (Result, error) {
	var r raw
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Result{}, fmt.Errorf("decoding resolve result: %w", err)
	}
	res := Result{ProfileID: r.Profile, Version: r.Version, Created: r.Created, Merged: r.Merged, Blocked: r.Blocked, Dropped: r.Dropped}
	for _, a := range r.Added {
		t, v, _ := strings.Cut(a, ":")
		res.Added = append(res.Added, Identifier{t, v})
	}
	for _, tc := range r.Traits {
		if len(tc) == 3 {
			res.TraitChanges = append(res.TraitChanges, TraitChange{Key: tc[0], Old: json.RawMessage(tc[1]), New: json.RawMessage(tc[2])})
		}
	}
	return res, nil
}
