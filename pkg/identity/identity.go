// Package identity is the identity graph: typed identifiers (user_id,
// anonymous_id, email, phone, external ids) each resolving to one canonical
// profile, kept in Redis and changed only by one Lua script per event, so
// several stitcher instances can resolve the same person at once and a
// redelivered event is a no-op. It sits between the validator and the
// segmenter: the stitcher (services/stitcher) calls ApplyBatch, the API
// reads profiles (Lookup, Profile) and undoes wrong links (Unlink, Allow).
//
// Redis layout, every key under the workspace hash tag (one Cluster slot per
// workspace, so every script touches a single shard):
//
//	fp:{ws}:id:<type>:<value>   STRING profile id owning the identifier
//	fp:{ws}:p:<pid>             HASH first, last (event-time ms), ver; for a merged-away
//	                            profile: merged_into, merged_by, merged_at, held (one
//	                            identifier it held: a split re-points the lineage at the
//	                            side holding it); for a split-off one: split_from,
//	                            split_by, split_at
//	fp:{ws}:p:<pid>:ids         SET "<type>:<value>"
//	fp:{ws}:p:<pid>:t           HASH trait → JSON value
//	fp:{ws}:p:<pid>:tt          HASH trait → event time (ms) of its value (last write wins)
//	fp:{ws}:p:<pid>:c           HASH counter ("track:Order Completed", "identify", …) → n
//	fp:{ws}:p:<pid>:e           HASH "<identA>|<identB>" → "<message id>|<ms>": the evidence
//	                            of every link (first message per pair), kept so a wrong
//	                            link can be undone later
//	fp:{ws}:p:<pid>:merged      SET profile ids merged into this one
//	fp:{ws}:i:<type>:<value>    HASH what events anchored on this identifier brought: t:<trait> →
//	                            JSON, tt:<trait> → ms, c:<counter> → n, first, last (so a split
//	                            can rebuild each side; the anchor is the event's most trusted
//	                            identifier on the profile)
//	fp:{ws}:deny:<type>:<value> SET identifiers an operator cut from this one (Unlink): never
//	                            linked again, directly or by a merge, until Allow
//	fp:{ws}:m:<message id>      STRING the result of that event (idempotency marker, TTL
//	                            Config.MarkerTTL, 7 days by default)
//	fp:{ws}:u:<operation id>    STRING the result of one Unlink call (go-redis retries it
//	                            after a network error; TTL 1 day)
//	fp:{ws}:profiles            SET ids of the live profiles (ScanProfiles: backfills)
//	fp:{ws}:blocked             LIST newest first, capped at MaxBlockedLog: JSON {at, msg,
//	                            profile, what, reason} of every merge or link merge
//	                            protection refused (BlockedMerges)
//
// # Merges, and undoing them
//
// An event carrying several identifiers links them: unknown ones join the
// profile of the most trusted known one, and profiles holding the others
// merge into it (the survivor); the merged-away profile keeps a forwarding
// record, so its id keeps resolving to the survivor (Profile follows it).
// Every link is also an edge with its evidence, and what every event
// brings (trait values with their event time, counter increments, first and
// last seen) is kept twice: on the profile (the read path) and on the
// event's anchor identifier. Unlink cuts the edges between two identifiers,
// forbids linking them again, and recomputes the component from the
// remaining edges: when it falls apart, the side of the first identifier
// keeps the profile id, every other piece gets a new one, and each piece's
// traits (last write wins over its identifiers' contributions), counters
// (their sum) and first/last seen are rebuilt. An event whose identifiers
// end up on two sides counts for the side of its most trusted identifier.
//
// # Merge protection
//
// A per-type limit on identifiers per profile (Segment's defaults: one
// user_id, five of every other type; per workspace, see Config) applies to
// linking and to merging alike, so an anonymous id seen with two different
// user ids (a shared device) never glues the two people together; blocked
// values ("null", "anonymous", "0", …, plus the workspace's own) are never
// identifiers at all. Every refusal is returned in Result.Blocked with its
// reason, logged in fp:{ws}:blocked and counted by the stitcher.
//
// # Bounds
//
// A profile holds at most MaxIdentifiers identifiers, MaxTraits traits of at
// most MaxTraitBytes each (names of at most MaxTraitKeyBytes), MaxCounters
// counters and MaxEdges evidence edges; one event brings at most MaxTraits
// traits and MaxIdentifiers identifiers. Beyond them data is dropped and
// counted (Result.Dropped, by reason), never an error, so a runaway source
// can neither grow a profile without limit nor stop the stitcher. The
// per-identifier contribution hashes only hold traits and counters their
// profile accepted, so they stay within the same bounds.
//
// # Redis Cluster
//
// The plan, and what holds today:
//
//   - Every key of a workspace carries the hash tag {ws}, so a workspace
//     lives in one slot and every script (resolve, unlink, erase) runs on
//     one shard, atomically. Each script declares one key (fp:{ws}:id) so
//     cluster clients route it; the undeclared keys it touches share that
//     key's slot, which Redis Cluster accepts. The services take go-redis
//     UniversalClient, so
//     one address is a single node and several are a cluster
//     (FP_REDIS_ADDR). A pipelined batch spanning workspaces is split by
//     go-redis per node.
//   - Workspaces spread over the shards; resharding moves whole slots, so
//     whole workspaces, online (Redis moves keys; scripts retry on ASK).
//   - One workspace's ceiling is one shard's. Measured with
//     deploy/bench/stitcher.sh on the 2-core box (Redis, the benchmark and
//     other work sharing both cores): ~30 k events/s of a shop's
//     clickstream, 10.4 Redis commands per event inside one script, one
//     round trip per pipelined batch of 500; Redis spends ~26 µs per event
//     (~8 µs in the commands, ~4 µs propagating the writes to the AOF, the
//     rest running the Lua), so a shard with a core of its own tops out
//     near 35–40 k events/s per workspace.
//   - A workspace larger than one shard would need its graph split by a
//     sub-tag (e.g. the hash of the most trusted identifier), making
//     cross-sub-tag merges a two-step protocol (link record, then move) —
//     not built; until then, give the biggest workspaces a dedicated
//     cluster or shard.
package identity

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fastjson"
)

//go:embed resolve.lua
var resolveLua string

var resolveScript = redis.NewScript(resolveLua)

// Identifier is one typed identifier.
type Identifier struct{ Type, Value string }

func (i Identifier) String() string { return i.Type + ":" + i.Value }

// Bounds of one profile (see the package doc). Beyond them data is dropped
// and counted in Result.Dropped, never an error.
const (
	MaxTraits        = 500      // traits per profile (and per event); a new key beyond it is dropped
	MaxTraitBytes    = 16 << 10 // bytes of one trait's JSON value; larger values are dropped
	MaxTraitKeyBytes = 256      // bytes of a trait name; longer names are dropped
	MaxCounters      = 200      // distinct counters ("track:<event>") per profile
	MaxIdentifiers   = 50       // identifiers per profile (and per event), whatever the per-type limits
	MaxEdges         = 400      // evidence edges per profile; a link beyond it keeps no evidence
	MaxBlockedLog    = 1000     // entries of a workspace's blocked-merge log
)

// Reasons in Result.Dropped.
const (
	DropTraits      = "traits"      // a new trait beyond MaxTraits
	DropTraitSize   = "trait_size"  // a value beyond MaxTraitBytes or a name beyond MaxTraitKeyBytes
	DropCounters    = "counters"    // a new counter beyond MaxCounters
	DropIdentifiers = "identifiers" // identifiers of one event beyond MaxIdentifiers
	DropEvidence    = "evidence"    // an edge beyond MaxEdges
)

// Reasons in Result.Blocked and the blocked-merge log.
const (
	BlockLimit          = "limit"           // the per-type limit (e.g. a second user_id)
	BlockMaxIdentifiers = "max_identifiers" // the profile would exceed MaxIdentifiers
	BlockDenied         = "denied"          // an operator cut this link (Unlink)
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

var typePattern = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// Validate checks a workspace's settings; errors name the field.
func (c Config) Validate() error {
	var errs []error
	if c.DefaultLimit < 1 || c.DefaultLimit > MaxIdentifiers {
		errs = append(errs, fmt.Errorf("default_limit %d: must be 1..%d", c.DefaultLimit, MaxIdentifiers))
	}
	types := make([]string, 0, len(c.Limits))
	for t := range c.Limits {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if !typePattern.MatchString(t) {
			errs = append(errs, fmt.Errorf("limits: identifier type %q: use 1-64 lower-case letters, digits, '_', '.' or '-'", t))
		} else if n := c.Limits[t]; n < 1 || n > MaxIdentifiers {
			errs = append(errs, fmt.Errorf("limit of %s is %d: must be 1..%d", t, n, MaxIdentifiers))
		}
	}
	seen := map[string]bool{}
	for _, t := range c.Priorities {
		switch {
		case !typePattern.MatchString(t):
			errs = append(errs, fmt.Errorf("priorities: identifier type %q: use 1-64 lower-case letters, digits, '_', '.' or '-'", t))
		case seen[t]:
			errs = append(errs, fmt.Errorf("priorities: %s is listed twice", t))
		}
		seen[t] = true
	}
	for i, v := range c.Blocked {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("blocked_values[%d] is empty (empty values are always blocked)", i))
		}
	}
	return errors.Join(errs...)
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
	// Blocked are the identifiers and profiles merge protection kept apart
	// from ProfileID.
	Blocked      []Block
	TraitChanges []TraitChange
	// Dropped counts what the bounds refused, by reason (Drop…).
	Dropped map[string]int
}

// Unchanged reports whether the event left the profile's traits and
// identities as they were: no profile created, no identifier linked, no
// profile merged, no trait changed. (A refused link or merge changes
// nothing either.)
func (r Result) Unchanged() bool {
	return !r.Created && len(r.Added) == 0 && len(r.Merged) == 0 && len(r.TraitChanges) == 0
}

// Block is one link or merge merge protection refused.
type Block struct {
	// What is an identifier ("type:value") that was not linked, or a
	// profile id that was not merged.
	What   string
	Reason string // Block…
}

// Profile reports whether What is a profile id (else an identifier).
func (b Block) Profile() bool { return !strings.Contains(b.What, ":") }

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

// flexList decodes a JSON array that cjson may have encoded as {} (it
// cannot tell an empty array from an empty object).
type flexList[T any] []T

func (l *flexList[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "{}" {
		*l = nil
		return nil
	}
	return json.Unmarshal(b, (*[]T)(l))
}

var resultParsers fastjson.ParserPool

// decodeResult reads resolve.lua's result: "=<profile>|<version>" for an
// event that changed nothing but times and counters, else JSON (an empty
// array may come as {}). It runs once per event, so it uses fastjson
// rather than reflection.
func decodeResult(s string) (Result, error) {
	if rest, ok := strings.CutPrefix(s, "="); ok {
		pid, ver, ok := strings.Cut(rest, "|")
		v, err := strconv.ParseInt(ver, 10, 64)
		if !ok || pid == "" || err != nil {
			return Result{}, fmt.Errorf("decoding resolve result %q: want =<profile>|<version>", s)
		}
		return Result{ProfileID: pid, Version: v}, nil
	}
	p := resultParsers.Get()
	defer resultParsers.Put(p)
	v, err := p.Parse(s)
	if err != nil {
		return Result{}, fmt.Errorf("decoding resolve result: %w", err)
	}
	res := Result{ProfileID: string(v.GetStringBytes("profile")), Version: v.GetInt64("version"), Created: v.GetBool("created")}
	for _, a := range v.GetArray("added") {
		t, val, _ := strings.Cut(string(a.GetStringBytes()), ":")
		res.Added = append(res.Added, Identifier{t, val})
	}
	for _, m := range v.GetArray("merged") {
		res.Merged = append(res.Merged, string(m.GetStringBytes()))
	}
	for _, b := range v.GetArray("blocked") {
		if x := b.GetArray(); len(x) == 2 {
			res.Blocked = append(res.Blocked, Block{What: string(x[0].GetStringBytes()), Reason: string(x[1].GetStringBytes())})
		}
	}
	for _, tc := range v.GetArray("traits") {
		if x := tc.GetArray(); len(x) == 3 {
			res.TraitChanges = append(res.TraitChanges, TraitChange{Key: string(x[0].GetStringBytes()),
				Old: json.RawMessage(string(x[1].GetStringBytes())), New: json.RawMessage(string(x[2].GetStringBytes()))})
		}
	}
	if o := v.GetObject("dropped"); o != nil && o.Len() > 0 {
		res.Dropped = make(map[string]int, o.Len())
		o.Visit(func(k []byte, n *fastjson.Value) { res.Dropped[string(k)] = n.GetInt() })
	}
	return res, nil
}
