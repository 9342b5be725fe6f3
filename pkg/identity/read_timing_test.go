package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// BenchmarkProfiles reads 500 profiles (a segmenter batch's worth)
// against the real Redis: "before" is the read as it was (merges followed
// with HGET first, then every part in a second round trip), "full" the
// one-round read, "segmenter" the one-round read without counters and
// lineage.
func BenchmarkProfiles(b *testing.B) {
	rdb := redisclient.New(testinfra.Redis(b))
	defer rdb.Close()
	g := New(rdb, DefaultConfig())
	ctx := context.Background()
	ws := testinfra.Unique(b)
	var pids []string
	for i := 0; i < 500; i++ {
		r, err := g.Apply(ctx, ev{fmt.Sprintf("m%d", i), i, fmt.Sprintf("anonymous_id:a%d user_id:u%d", i, i), `{"plan":"pro","email":"x@y.z"}`, "page"}.update(ws))
		if err != nil {
			b.Fatal(err)
		}
		pids = append(pids, r.ProfileID)
	}
	for _, tc := range []struct {
		name string
		read func() (map[string]Profile, error)
	}{
		{"before", func() (map[string]Profile, error) { return g.profilesTwoRounds(ctx, ws, pids) }},
		{"full", func() (map[string]Profile, error) { return g.Profiles(ctx, ws, pids) }},
		{"segmenter", func() (map[string]Profile, error) {
			return g.ProfilesWith(ctx, ws, pids, ReadOptions{SkipCounters: true, SkipMerged: true})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				got, err := tc.read()
				if err != nil || len(got) != len(pids) {
					b.Fatalf("read %d of %d: %v", len(got), len(pids), err)
				}
			}
		})
	}
}

// profilesTwoRounds is Profiles as it was before the one-round read, kept
// for the comparison.
func (g *Graph) profilesTwoRounds(ctx context.Context, workspace string, pids []string) (map[string]Profile, error) {
	p := Prefix(workspace)
	// Follow merges: survivor[asked] is where asked lives now.
	survivor := make(map[string]string, len(pids))
	todo := make([]string, 0, len(pids))
	for _, pid := range pids {
		if _, dup := survivor[pid]; !dup {
			survivor[pid] = pid
			todo = append(todo, pid)
		}
	}
	for hops := 0; len(todo) > 0; hops++ {
		if hops > 100 {
			return nil, fmt.Errorf("profile %s: merge chain too long", todo[0])
		}
		pipe := g.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(todo))
		for i, asked := range todo {
			cmds[i] = pipe.HGet(ctx, p+"p:"+survivor[asked], "merged_into")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("following merges: %w", err)
		}
		var next []string
		for i, asked := range todo {
			if into, err := cmds[i].Result(); err == nil && into != "" {
				survivor[asked] = into
				next = append(next, asked)
			}
		}
		todo = next
	}
	type read struct {
		h, traits, counts *redis.MapStringStringCmd
		ids, merged       *redis.StringSliceCmd
	}
	reads := map[string]*read{}
	pipe := g.rdb.Pipeline()
	for _, pid := range survivor {
		if reads[pid] != nil {
			continue
		}
		reads[pid] = &read{
			h: pipe.HGetAll(ctx, p+"p:"+pid), ids: pipe.SMembers(ctx, p+"p:"+pid+":ids"), traits: pipe.HGetAll(ctx, p+"p:"+pid+":t"),
			counts: pipe.HGetAll(ctx, p+"p:"+pid+":c"), merged: pipe.SMembers(ctx, p+"p:"+pid+":merged"),
		}
	}
	if len(reads) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("reading profiles: %w", err)
		}
	}
	decoded := map[string]*Profile{}
	for pid, r := range reads {
		if len(r.h.Val()) == 0 {
			continue
		}
		prof := &Profile{ID: pid, Traits: map[string]json.RawMessage{}, Counters: map[string]int64{}, Merged: r.merged.Val()}
		h := r.h.Val()
		ms := func(k string) time.Time { n, _ := strconv.ParseInt(h[k], 10, 64); return time.UnixMilli(n).UTC() }
		prof.FirstSeen, prof.LastSeen = ms("first"), ms("last")
		prof.Version, _ = strconv.ParseInt(h["ver"], 10, 64)
		for _, s := range r.ids.Val() {
			t, v, _ := strings.Cut(s, ":")
			prof.Identities = append(prof.Identities, Identifier{t, v})
		}
		sort.Slice(prof.Identities, func(i, j int) bool { return prof.Identities[i].String() < prof.Identities[j].String() })
		for k, v := range r.traits.Val() {
			prof.Traits[k] = json.RawMessage(v)
		}
		for k, v := range r.counts.Val() {
			prof.Counters[k], _ = strconv.ParseInt(v, 10, 64)
		}
		sort.Strings(prof.Merged)
		decoded[pid] = prof
	}
	out := make(map[string]Profile, len(pids))
	for asked, pid := range survivor {
		if prof := decoded[pid]; prof != nil {
			out[asked] = *prof
		}
	}
	return out, nil
}
