package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/testinfra"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

// TestUnlinkSplitsAWrongMerge: a form that submitted Ann's email from
// Bob's device glued the two people together. The operator cuts that link:
// the profile splits, each side gets back exactly its own traits, counters
// and first/last seen, the same link is never made again, and a second
// Unlink is a no-op.
func TestUnlinkSplitsAWrongMerge(t *testing.T) {
	g, _ := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	tr := func(kv ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
		return m
	}
	apply := func(msg string, minute int, ids []Identifier, traits map[string]json.RawMessage, counter string) Result {
		t.Helper()
		res, err := g.Apply(ctx, Update{Workspace: ws, MessageID: msg, Time: t0.Add(time.Duration(minute) * time.Minute), Identifiers: ids, Traits: traits, Counter: counter})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	email, devA, devB := Identifier{"email", "ann@x.io"}, Identifier{"anonymous_id", "dev-a"}, Identifier{"anonymous_id", "dev-b"}
	apply("e1", 0, []Identifier{email, devA}, tr("plan", `"pro"`), "track:Order Completed")
	apply("e2", 1, []Identifier{devB}, tr("city", `"Berlin"`), "page")
	apply("e3", 2, []Identifier{devB}, nil, "page")
	wrong := apply("e4", 3, []Identifier{email, devB}, tr("newsletter", `true`), "identify")
	if len(wrong.Merged) != 1 {
		t.Fatalf("setup: the wrong event did not merge: %+v", wrong)
	}

	split, err := g.Unlink(ctx, ws, email, devB, "form bug", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if split.Status != "split" || len(split.Pieces) != 1 || fmt.Sprint(split.Pieces[0].Identifiers) != "[anonymous_id:dev-b]" ||
		fmt.Sprint(split.Kept) != "[anonymous_id:dev-a email:ann@x.io]" {
		t.Fatalf("split = %+v", split)
	}
	ann, _ := g.Lookup(ctx, ws, email)
	bob, _ := g.Lookup(ctx, ws, devB)
	if ann.ID != split.ProfileID || bob.ID != split.Pieces[0].ProfileID || ann.ID == bob.ID {
		t.Fatalf("ann %s, bob %s, split %+v", ann.ID, bob.ID, split)
	}
	check := func(p Profile, traits, counters string, first, last int) {
		t.Helper()
		if got := fmt.Sprint(p.Traits); got != traits {
			t.Errorf("%s traits = %s, want %s", p.ID, got, traits)
		}
		if got := fmt.Sprint(p.Counters); got != counters {
			t.Errorf("%s counters = %s, want %s", p.ID, got, counters)
		}
		if !p.FirstSeen.Equal(t0.Add(time.Duration(first)*time.Minute)) || !p.LastSeen.Equal(t0.Add(time.Duration(last)*time.Minute)) {
			t.Errorf("%s first/last = %v/%v", p.ID, p.FirstSeen, p.LastSeen)
		}
	}
	check(ann, `map[newsletter:[116 114 117 101] plan:[34 112 114 111 34]]`, "map[identify:1 track:Order Completed:1]", 0, 3)
	check(bob, `map[city:[34 66 101 114 108 105 110 34]]`, "map[page:2]", 1, 2)

	// The same wrong link comes again: it is refused.
	again := apply("e5", 4, []Identifier{email, devB}, nil, "identify")
	if len(again.Merged) != 0 || len(again.Blocked) == 0 {
		t.Fatalf("the cut link was made again: %+v", again)
	}
	if p, _ := g.Lookup(ctx, ws, devB); p.ID != bob.ID {
		t.Fatalf("dev-b moved to %s", p.ID)
	}
	if s, err := g.Unlink(ctx, ws, email, devB, "retry", t0.Add(2*time.Hour)); err != nil || s.Status != "not_linked" {
		t.Fatalf("second unlink: %+v, %v", s, err)
	}
	changes := split.Changes(ws, "op-1", t0.Add(time.Hour))
	if len(changes) != 2 || changes[0].Kind != profilev1.ChangeKind_CHANGE_KIND_SPLIT || changes[1].RelatedProfileIds[0] != ann.ID ||
		changes[0].ChangeId == changes[1].ChangeId || split.Changes(ws, "op-1", t0)[1].ChangeId != changes[1].ChangeId {
		t.Fatalf("changes = %v", changes)
	}
}

// TestUnlinkKeepsWhatOtherEvidenceJoins: when other events also tie the
// two identifiers together, one cut does not split the person.
func TestUnlinkKeepsWhatOtherEvidenceJoins(t *testing.T) {
	g, _ := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	u, a, e := Identifier{"user_id", "u"}, Identifier{"anonymous_id", "a"}, Identifier{"email", "u@x.io"}
	for i, ids := range [][]Identifier{{u, a}, {u, e}, {e, a}} {
		if _, err := g.Apply(ctx, Update{Workspace: ws, MessageID: fmt.Sprint(i), Time: t0, Identifiers: ids}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := g.Unlink(ctx, ws, u, a, "check", t0)
	if err != nil || s.Status != "still_linked" {
		t.Fatalf("Unlink = %+v, %v", s, err)
	}
	if p, _ := g.Lookup(ctx, ws, a); len(p.Identities) != 3 {
		t.Fatalf("profile = %+v", p)
	}
}

func TestScanProfilesListsLiveProfiles(t *testing.T) {
	g, _ := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	for i, ids := range [][]Identifier{{{"user_id", "a"}}, {{"anonymous_id", "x"}}, {{"user_id", "a"}, {"anonymous_id", "x"}}, {{"user_id", "b"}}} {
		if _, err := g.Apply(ctx, Update{Workspace: ws, MessageID: fmt.Sprint(i), Time: t0, Identifiers: ids}); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	for cursor := uint64(0); ; {
		pids, next, err := g.ScanProfiles(ctx, ws, cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pids...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	a, _ := g.Lookup(ctx, ws, Identifier{"user_id", "a"})
	b, _ := g.Lookup(ctx, ws, Identifier{"user_id", "b"})
	if len(all) != 2 || !(all[0] == a.ID && all[1] == b.ID || all[0] == b.ID && all[1] == a.ID) {
		t.Fatalf("ScanProfiles = %v, want the two live profiles %s %s", all, a.ID, b.ID)
	}
}
