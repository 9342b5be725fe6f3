package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

func TestProfileCacheLookup(t *testing.T) {
	k := profileKey{"w", "p"}
	for _, c := range []struct {
		name     string
		versions []int64
		hit      bool
		through  int64
	}{
		{"the next version", []int64{6}, true, 6},
		{"the next ones, out of order", []int64{8, 6, 7}, true, 8},
		{"versions already covered", []int64{3, 5}, true, 5},
		{"covered and next", []int64{5, 6}, true, 6},
		{"a version further on", []int64{7}, false, 0},
		{"a gap after the next", []int64{6, 8}, false, 0},
		{"a version unknown", []int64{0}, false, 0},
	} {
		pc := newProfileCache(10)
		pc.put(k, 5, map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}, []string{"anonymous_id:a"})
		cp, through := pc.lookup(k, c.versions)
		if (cp != nil) != c.hit || through != c.through {
			t.Errorf("%s: hit %v through %d, want %v %d", c.name, cp != nil, through, c.hit, c.through)
		}
	}
	pc := newProfileCache(1)
	pc.put(k, 1, nil, nil)
	pc.put(profileKey{"w", "q"}, 1, nil, nil) // k goes: one profile kept
	if cp, _ := pc.lookup(k, []int64{2}); cp != nil {
		t.Error("an evicted profile was found")
	}
	var off *profileCache // -profiles.cache=0
	if cp, _ := off.lookup(k, []int64{1}); cp != nil {
		t.Error("a disabled cache found a profile")
	}
	off.put(k, 1, nil, nil)
	off.extend(k, 2)
	off.forget(k)
}

// TestGroupUsesCachedProfileOnlyWhileValid: through the real identity
// graph, a profile's traits come from memory for events that left it
// unchanged and from Redis again after one that changed it, after a gap in
// its versions, and when it was merged away (the event goes to the
// survivor, as without the cache).
func TestGroupUsesCachedProfileOnlyWhileValid(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ctx := context.Background()
	ws := testinfra.Unique(t)
	graph := identity.New(rdb, identity.DefaultConfig())
	reg, err := sources.Parse([]byte("workspaces:\n  - id: " + ws + "\n    sources: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := &handler{reg: func() *sources.Registry { return reg }, graph: graph, store: segstate.New(rdb), shards: 1,
		now: time.Now, log: slog.New(slog.DiscardHandler), metrics: newMetrics(nil), profiles: newProfileCache(100)}
	n := 0
	apply := func(ids []identity.Identifier, traits map[string]json.RawMessage) identity.Result {
		n++
		r, err := graph.Apply(ctx, identity.Update{Workspace: ws, MessageID: fmt.Sprintf("m%d", n), Time: time.Now(), Identifiers: ids, Traits: traits, Counter: "page"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	anon := []identity.Identifier{{Type: "anonymous_id", Value: "a1"}}
	plan := func(p string) map[string]json.RawMessage {
		return map[string]json.RawMessage{"plan": json.RawMessage(`"` + p + `"`)}
	}
	// handle groups one resolved event as the stitcher sent it and reports
	// the profile it was grouped under, its plan, and whether the cache
	// answered.
	handle := func(r identity.Result, version int64) (pid, plan string, hit bool) {
		t.Helper()
		it := &item{ws: ws, pid: r.ProfileID, in: input{kind: inEvent, profileUnchanged: r.Unchanged(), profileVersion: version}}
		before, _ := h.profiles.stats()
		gs, err := h.group(ctx, []*item{it})
		if err != nil || len(gs) != 1 {
			t.Fatalf("group: %v, %d groups", err, len(gs))
		}
		after, _ := h.profiles.stats()
		return gs[0].pid, string(gs[0].prof.Traits["plan"]), after > before
	}

	r1 := apply(anon, plan("pro"))
	if _, p, hit := handle(r1, r1.Version); hit || p != `"pro"` {
		t.Fatalf("first event: plan %s, hit %v; want a read of \"pro\"", p, hit)
	}
	r2 := apply(anon, nil)
	if _, p, hit := handle(r2, r2.Version); !hit || p != `"pro"` {
		t.Fatalf("an unchanged event: plan %s, hit %v; want \"pro\" from memory", p, hit)
	}
	r3 := apply(anon, plan("free"))
	if _, p, hit := handle(r3, r3.Version); hit || p != `"free"` {
		t.Fatalf("after a trait change: plan %s, hit %v; want a read of \"free\"", p, hit)
	}
	r4 := apply(anon, nil)
	if _, p, hit := handle(r4, r4.Version); !hit || p != `"free"` {
		t.Fatalf("unchanged after the change: plan %s, hit %v; want \"free\" from memory", p, hit)
	}
	// A change the cache never saw (its event went elsewhere): the next
	// version is not the one after what it holds.
	apply(anon, plan("team"))
	r6 := apply(anon, nil)
	if _, p, hit := handle(r6, r6.Version); hit || p != `"team"` {
		t.Fatalf("after a gap: plan %s, hit %v; want a read of \"team\"", p, hit)
	}
	// The profile is merged into a signed-up user's; an event resolved
	// to it before (next version, unchanged) goes to the survivor.
	user := apply([]identity.Identifier{{Type: "user_id", Value: "u1"}, {Type: "anonymous_id", Value: "a2"}}, plan("enterprise"))
	merge := apply([]identity.Identifier{{Type: "user_id", Value: "u1"}, {Type: "anonymous_id", Value: "a1"}}, nil)
	if len(merge.Merged) != 1 || merge.Merged[0] != r1.ProfileID {
		t.Fatalf("merge: %+v", merge)
	}
	late := identity.Result{ProfileID: r1.ProfileID, Version: r6.Version + 1}
	if pid, p, _ := handle(late, late.Version); pid != user.ProfileID || p != `"enterprise"` {
		t.Fatalf("an event of the merged-away profile grouped under %s with plan %s; want the survivor %s with \"enterprise\"", pid, p, user.ProfileID)
	}
}
