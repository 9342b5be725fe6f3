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

// view is a profile as the tests compare it: identities, traits, counters,
// first and last seen (minutes after t0).
func view(p Profile) string {
	traits := map[string]string{}
	for k, v := range p.Traits {
		traits[k] = string(v)
	}
	return fmt.Sprintf("%v traits=%v counters=%v seen=%v..%v", p.Identities, traits, p.Counters,
		p.FirstSeen.Sub(t0).Minutes(), p.LastSeen.Sub(t0).Minutes())
}

// wrongEmail is two people glued together by a wrong shared email: a form
// on Bob's device submitted Ann's email (e4).
var wrongEmail = []ev{
	{"e1", 0, "email:ann@x.io anonymous_id:dev-a", `{"plan":"pro"}`, "track:Order Completed"},
	{"e2", 1, "anonymous_id:dev-b", `{"city":"Berlin"}`, "page"},
	{"e3", 2, "anonymous_id:dev-b", "", "page"},
	{"e4", 3, "email:ann@x.io anonymous_id:dev-b", `{"newsletter":true,"city":"Paris"}`, "identify"},
	{"e5", 4, "anonymous_id:dev-a", `{"plan":"enterprise"}`, "page"},
}

const (
	annAfterSplit = `[anonymous_id:dev-a email:ann@x.io] traits=map[city:"Paris" newsletter:true plan:"enterprise"] counters=map[identify:1 page:1 track:Order Completed:1] seen=0..4`
	bobAfterSplit = `[anonymous_id:dev-b] traits=map[city:"Berlin"] counters=map[page:2] seen=1..2`
)

// TestUnlinkSplitsAWrongMerge: the operator cuts the wrong link. The
// profile splits, each side gets back exactly its own traits, counters and
// first/last seen, the old profile id of Bob's device follows it, the same
// link is never made again (not by redelivery, not by a replay without
// idempotency markers, not by a new event), the refusals are logged, a
// second Unlink is a no-op, and Allow lets the link be made again.
func TestUnlinkSplitsAWrongMerge(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	results := map[string]Result{}
	apply := func(e ev) Result {
		t.Helper()
		res, err := g.Apply(ctx, e.update(ws))
		if err != nil {
			t.Fatal(err)
		}
		results[e.msg] = res
		return res
	}
	for _, e := range wrongEmail {
		apply(e)
	}
	bobsOldID := results["e2"].ProfileID
	if m := results["e4"].Merged; len(m) != 1 || m[0] != bobsOldID {
		t.Fatalf("setup: the wrong event did not merge Bob's profile: %+v", results["e4"])
	}
	before, _ := g.Lookup(ctx, ws, Identifier{"email", "ann@x.io"})

	split, err := g.Unlink(ctx, ws, Identifier{"email", "ann@x.io"}, Identifier{"anonymous_id", "dev-b"}, "form bug", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if split.Status != SplitDone || split.ProfileID != before.ID || len(split.Pieces) != 1 ||
		fmt.Sprint(split.Pieces[0].Identifiers) != "[anonymous_id:dev-b]" || fmt.Sprint(split.Kept) != "[anonymous_id:dev-a email:ann@x.io]" ||
		split.Version != before.Version+1 || split.Pieces[0].Version != 1 {
		t.Fatalf("split = %+v (profile was %s v%d)", split, before.ID, before.Version)
	}
	bobID := split.Pieces[0].ProfileID
	check := func(when string) {
		t.Helper()
		if got := components(t, rdb, ws); fmt.Sprint(got) != "[anonymous_id:dev-a email:ann@x.io anonymous_id:dev-b]" {
			t.Errorf("%s: graph = %q", when, got)
		}
		ann, _ := g.Lookup(ctx, ws, Identifier{"anonymous_id", "dev-a"})
		bob, _ := g.Lookup(ctx, ws, Identifier{"anonymous_id", "dev-b"})
		if ann.ID != before.ID || view(ann) != annAfterSplit {
			t.Errorf("%s: Ann = %s %s\nwant      %s", when, ann.ID, view(ann), annAfterSplit)
		}
		if bob.ID != bobID || view(bob) != bobAfterSplit {
			t.Errorf("%s: Bob = %s %s\nwant      %s", when, bob.ID, view(bob), bobAfterSplit)
		}
		// Bob's first profile id was merged into Ann's; it follows Bob now.
		if old, err := g.Profile(ctx, ws, bobsOldID); err != nil || old.ID != bobID {
			t.Errorf("%s: Bob's old profile id resolves to %q (%v), want %s", when, old.ID, err, bobID)
		}
	}
	check("after the split")

	// Redelivery of the original events: the markers answer, nothing moves.
	for _, e := range wrongEmail {
		if res, _ := g.Apply(ctx, e.update(ws)); res.Version != results[e.msg].Version {
			t.Fatalf("redelivered %s gave %+v, first %+v", e.msg, res, results[e.msg])
		}
	}
	check("after redelivery")

	// The same link again, in a new event: refused, logged, no merge.
	again := apply(ev{"e6", 5, "email:ann@x.io anonymous_id:dev-b", "", "identify"})
	if again.ProfileID != before.ID || len(again.Merged) != 0 || fmt.Sprint(again.Blocked) != fmt.Sprintf("[{%s denied}]", bobID) {
		t.Fatalf("the cut link was made again: %+v", again)
	}
	if log, err := g.BlockedMerges(ctx, ws, 10); err != nil || len(log) != 1 || log[0].What != bobID || log[0].Reason != BlockDenied ||
		log[0].MessageID != "e6" || log[0].ProfileID != before.ID || !log[0].At.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("blocked-merge log = %+v, %v", log, err)
	}

	// Second call: nothing to do.
	if s, err := g.Unlink(ctx, ws, Identifier{"email", "ann@x.io"}, Identifier{"anonymous_id", "dev-b"}, "retry", t0.Add(2*time.Hour)); err != nil || s.Status != SplitNotLinked {
		t.Fatalf("second unlink: %+v, %v", s, err)
	}

	// The operator changes their mind: the next event links them again.
	if ok, err := g.Allow(ctx, ws, Identifier{"email", "ann@x.io"}, Identifier{"anonymous_id", "dev-b"}); !ok || err != nil {
		t.Fatalf("Allow = %v, %v", ok, err)
	}
	if res := apply(ev{"e7", 6, "email:ann@x.io anonymous_id:dev-b", "", "identify"}); len(res.Merged) != 1 || res.Merged[0] != bobID {
		t.Fatalf("after Allow: %+v", res)
	}
}

// TestUnlinkReplayWithoutMarkers: a replay from Kafka after the markers
// expired applies the events again; the cut link stays cut.
func TestUnlinkReplayWithoutMarkers(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	for _, e := range wrongEmail {
		if _, err := g.Apply(ctx, e.update(ws)); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := g.Unlink(ctx, ws, Identifier{"email", "ann@x.io"}, Identifier{"anonymous_id", "dev-b"}, "form bug", t0); err != nil || s.Status != SplitDone {
		t.Fatalf("unlink: %+v %v", s, err)
	}
	for _, e := range wrongEmail {
		rdb.Del(ctx, Prefix(ws)+"m:"+e.msg)
		if _, err := g.Apply(ctx, e.update(ws)); err != nil {
			t.Fatal(err)
		}
	}
	if got := components(t, rdb, ws); fmt.Sprint(got) != "[anonymous_id:dev-a email:ann@x.io anonymous_id:dev-b]" {
		t.Fatalf("graph after replay = %q", got)
	}
}

// TestUnlinkRetriedCallAnswersTheSame: go-redis resends a script after a
// network error; the operation id makes the resent call answer what the
// first did instead of "not_linked".
func TestUnlinkRetriedCallAnswersTheSame(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	for _, e := range wrongEmail {
		if _, err := g.Apply(ctx, e.update(ws)); err != nil {
			t.Fatal(err)
		}
	}
	args := []any{Prefix(ws), "email:ann@x.io", "anonymous_id:dev-b", t0.UnixMilli(), "form bug", "op-1", MaxTraits, MaxCounters, "p_new"}
	first, err := unlinkScript.Run(ctx, rdb, []string{Prefix(ws) + "id"}, args...).Text()
	if err != nil {
		t.Fatal(err)
	}
	resent, err := unlinkScript.Run(ctx, rdb, []string{Prefix(ws) + "id"}, args...).Text()
	if err != nil || resent != first {
		t.Fatalf("resent call answered %s (%v), first %s", resent, err, first)
	}
	var r struct{ Status string }
	if json.Unmarshal([]byte(first), &r); r.Status != SplitDone {
		t.Fatalf("first = %s", first)
	}
}

// TestUnlinkKeepsWhatOtherEvidenceJoins: when other events also tie the
// two identifiers together, one cut does not split the person, and the
// answer shows the evidence that still joins them.
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
	if err != nil || s.Status != SplitStillLinked || fmt.Sprint(s.Path) != "[user_id:u|email:u@x.io email:u@x.io|anonymous_id:a]" {
		t.Fatalf("Unlink = %+v, %v", s, err)
	}
	if p, _ := g.Lookup(ctx, ws, a); len(p.Identities) != 3 {
		t.Fatalf("profile = %+v", p)
	}
	// Cutting the rest of the chain splits it: a alone, u with e.
	s, err = g.Unlink(ctx, ws, e, a, "check", t0)
	if err != nil || s.Status != SplitDone || fmt.Sprint(s.Kept) != "[email:u@x.io user_id:u]" || fmt.Sprint(s.Pieces[0].Identifiers) != "[anonymous_id:a]" {
		t.Fatalf("second cut = %+v, %v", s, err)
	}
}

// TestUnlinkSplitsIntoSeveralPieces: cutting the hub of a star leaves
// each arm as a profile of its own, with deterministic change ids.
func TestUnlinkSplitsIntoSeveralPieces(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	events := []ev{
		{"m1", 0, "email:shared@x.io anonymous_id:a", `{"name":"A"}`, "page"},
		{"m2", 1, "email:shared@x.io anonymous_id:b", `{"name":"B"}`, "page"},
		{"m3", 2, "email:shared@x.io phone:+491", "", "identify"},
		{"m4", 3, "anonymous_id:b", "", "page"},
	}
	for _, e := range events {
		if _, err := g.Apply(ctx, e.update(ws)); err != nil {
			t.Fatal(err)
		}
	}
	// Cut b from the shared email: b leaves; a and the phone stay.
	s, err := g.Unlink(ctx, ws, Identifier{"email", "shared@x.io"}, Identifier{"anonymous_id", "b"}, "shared inbox", t0)
	if err != nil || s.Status != SplitDone {
		t.Fatalf("Unlink = %+v, %v", s, err)
	}
	if got := components(t, rdb, ws); fmt.Sprint(got) != "[anonymous_id:a email:shared@x.io phone:+491 anonymous_id:b]" {
		t.Fatalf("graph = %q", got)
	}
	b, _ := g.Lookup(ctx, ws, Identifier{"anonymous_id", "b"})
	if view(b) != `[anonymous_id:b] traits=map[] counters=map[page:1] seen=3..3` {
		// m2 was anchored on the email (its most trusted identifier), so
		// its trait and count stay with the email's side.
		t.Fatalf("b = %s", view(b))
	}
	// Cut a too: a, and the email with the phone.
	s, err = g.Unlink(ctx, ws, Identifier{"email", "shared@x.io"}, Identifier{"anonymous_id", "a"}, "shared inbox", t0)
	if err != nil || s.Status != SplitDone || fmt.Sprint(s.Kept) != "[email:shared@x.io phone:+491]" {
		t.Fatalf("Unlink = %+v, %v", s, err)
	}
	changes := s.Changes(ws, "op-1", t0.Add(time.Hour))
	if len(changes) != 2 || changes[0].Kind != profilev1.ChangeKind_CHANGE_KIND_SPLIT || changes[0].ProfileId != s.ProfileID ||
		changes[1].RelatedProfileIds[0] != s.ProfileID || changes[0].ChangeId == changes[1].ChangeId ||
		s.Changes(ws, "op-1", t0)[1].ChangeId != changes[1].ChangeId || changes[0].Version != uint64(s.Version) ||
		len(changes[1].IdentitiesAdded) != 1 || changes[1].IdentitiesAdded[0].GetValue() != "a" {
		t.Fatalf("changes = %v", changes)
	}
	if (Split{Status: SplitStillLinked}).Changes(ws, "x", t0) != nil {
		t.Fatal("a split that did not happen announced changes")
	}
}

func TestUnlinkSameIdentifier(t *testing.T) {
	g, _ := graph(t)
	id := Identifier{"user_id", "u"}
	if _, err := g.Unlink(context.Background(), "ws", id, id, "x", t0); err != ErrSameIdentifier {
		t.Fatalf("err = %v", err)
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
