package identity

import (
	"context"
	"testing"

	"github.com/firstparty/firstparty/pkg/testinfra"
)

// TestProfilesWithFollowsMergesAndSkipsParts: a merged-away id and its
// survivor read as the survivor in one call, with or without counters and
// lineage, and both readings agree on everything else.
func TestProfilesWithFollowsMergesAndSkipsParts(t *testing.T) {
	g, _ := graph(t)
	ctx := context.Background()
	ws := testinfra.Unique(t)
	if _, err := g.Apply(ctx, ev{"m1", 0, "anonymous_id:a1", `{"plan":"free"}`, "page"}.update(ws)); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply(ctx, ev{"m2", 1, "user_id:u1", "", "identify"}.update(ws)); err != nil {
		t.Fatal(err)
	}
	r3, err := g.Apply(ctx, ev{"m3", 2, "user_id:u1 anonymous_id:a1", "", "identify"}.update(ws))
	if err != nil {
		t.Fatal(err)
	}
	if len(r3.Merged) != 1 {
		t.Fatalf("the third event merged %v, want one profile", r3.Merged)
	}
	loser, survivor := r3.Merged[0], r3.ProfileID
	ask := []string{loser, survivor, loser, "no-such-profile"}

	full, err := g.Profiles(ctx, ws, ask)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := g.ProfilesWith(ctx, ws, ask, ReadOptions{SkipCounters: true, SkipMerged: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []map[string]Profile{full, lite} {
		if len(got) != 2 || got[loser].ID != survivor || got[survivor].ID != survivor {
			t.Fatalf("read %d profiles; %s → %q, %s → %q, want %s", len(got), loser, got[loser].ID, survivor, got[survivor].ID, survivor)
		}
		if _, ok := got["no-such-profile"]; ok {
			t.Fatal("an unknown id was found")
		}
	}
	f, l := full[loser], lite[loser]
	if len(f.Merged) != 1 || f.Merged[0] != loser || f.Counters["identify"] != 2 || f.Counters["page"] != 1 {
		t.Errorf("full read: merged %v, counters %v", f.Merged, f.Counters)
	}
	if len(l.Merged) != 0 || len(l.Counters) != 0 {
		t.Errorf("read without counters and lineage still has them: %v %v", l.Merged, l.Counters)
	}
	if view(f) != view(Profile{ID: l.ID, Identities: l.Identities, Traits: l.Traits, Counters: f.Counters, FirstSeen: l.FirstSeen, LastSeen: l.LastSeen, Version: l.Version, Merged: f.Merged}) {
		t.Errorf("the two reads disagree:\n%s\n%s", view(f), view(l))
	}

	// Partial: the survivor's own hash only; the loser asked partially is
	// still followed to the survivor, read in full when not named.
	part, err := g.ProfilesWith(ctx, ws, []string{survivor}, ReadOptions{SkipCounters: true, SkipMerged: true, Partial: func(pid string) bool { return pid == survivor }})
	if err != nil {
		t.Fatal(err)
	}
	if p := part[survivor]; !p.Partial || p.Traits != nil || p.Identities != nil || p.Version != f.Version || !p.LastSeen.Equal(f.LastSeen) || !p.FirstSeen.Equal(f.FirstSeen) {
		t.Errorf("partial read: %+v, want times and version %d only", p, f.Version)
	}
	viaLoser, err := g.ProfilesWith(ctx, ws, []string{loser}, ReadOptions{SkipCounters: true, SkipMerged: true, Partial: func(pid string) bool { return pid == loser }})
	if err != nil {
		t.Fatal(err)
	}
	if p := viaLoser[loser]; p.Partial || p.ID != survivor || string(p.Traits["plan"]) != `"free"` || len(p.Identities) != 2 {
		t.Errorf("a merged-away profile asked partially: %+v, want its survivor in full", p)
	}
}
