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
	p := Prefix(workspace)
	for hops := 0; ; hops++ {
		into, err := g.rdb.HGet(ctx, p+"p:"+pid, "merged_into").Result()
		if errors.Is(err, redis.Nil) {
			break
		}
		if err != nil {
			return Profile{}, err
		}
		if hops > 100 {
			return Profile{}, fmt.Errorf("profile %s: merge chain too long", pid)
		}
		pid = into
	}
	pipe := g.rdb.Pipeline()
	h := pipe.HGetAll(ctx, p+"p:"+pid)
	ids := pipe.SMembers(ctx, p+"p:"+pid+":ids")
	traits := pipe.HGetAll(ctx, p+"p:"+pid+":t")
	counts := pipe.HGetAll(ctx, p+"p:"+pid+":c")
	merged := pipe.SMembers(ctx, p+"p:"+pid+":merged")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Profile{}, fmt.Errorf("reading profile %s: %w", pid, err)
	}
	if len(h.Val()) == 0 {
		return Profile{}, ErrNotFound
	}
	prof := Profile{ID: pid, Traits: map[string]json.RawMessage{}, Counters: map[string]int64{}, Merged: merged.Val()}
	ms := func(k string) time.Time { n, _ := strconv.ParseInt(h.Val()[k], 10, 64); return time.UnixMilli(n).UTC() }
	prof.FirstSeen, prof.LastSeen = ms("first"), ms("last")
	prof.Version, _ = strconv.ParseInt(h.Val()["ver"], 10, 64)
	for _, s := range ids.Val() {
		t, v, _ := strings.Cut(s, ":")
		prof.Identities = append(prof.Identities, Identifier{t, v})
	}
	sort.Slice(prof.Identities, func(i, j int) bool { return prof.Identities[i].String() < prof.Identities[j].String() })
	for k, v := range traits.Val() {
		prof.Traits[k] = json.RawMessage(v)
	}
	for k, v := range counts.Val() {
		prof.Counters[k], _ = strconv.ParseInt(v, 10, 64)
	}
	sort.Strings(prof.Merged)
	return prof, nil
}
