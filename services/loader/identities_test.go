package main

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/topics"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

func created(id, p string, ids ...string) *profilev1.ProfileChange {
	return change(id, p, profilev1.ChangeKind_CHANGE_KIND_CREATED, nil, ids...)
}

func added(id, p string, ids ...string) *profilev1.ProfileChange {
	return change(id, p, profilev1.ChangeKind_CHANGE_KIND_IDENTITIES_ADDED, nil, ids...)
}

func merged(id, survivor string, absorbed []string, ids ...string) *profilev1.ProfileChange {
	return change(id, survivor, profilev1.ChangeKind_CHANGE_KIND_MERGED, absorbed, ids...)
}

// change builds a ProfileChange; ids are "type:value".
func change(id, p string, kind profilev1.ChangeKind, related []string, ids ...string) *profilev1.ProfileChange {
	c := &profilev1.ProfileChange{ChangeId: id, WorkspaceId: "shop", ProfileId: p, Kind: kind, RelatedProfileIds: related}
	for _, s := range ids {
		var typ, val string
		for i := range s {
			if s[i] == ':' {
				typ, val = s[:i], s[i+1:]
				break
			}
		}
		c.IdentitiesAdded = append(c.IdentitiesAdded, &profilev1.Identity{Type: typ, Value: val})
	}
	return c
}

// fakeTable is the identities table in memory: key -> current row.
type fakeTable map[identityKey]identityRow

// lookup answers what identityStore.lookup would read from the table.
func (f fakeTable) lookup(ws string, changes []*profilev1.ProfileChange) identityLookup {
	targets, absorbed := identityInputs(changes)
	look := identityLookup{forward: map[string]string{}}
	next := append(append([]string{}, targets...), absorbed...)
	for hop := 0; hop < maxForwardHops && len(next) > 0; hop++ {
		var more []string
		for _, p := range next {
			if r, ok := f[identityKey{ws, profileIDType, p}]; ok && r.ProfileID != p {
				if _, seen := look.forward[p]; !seen {
					look.forward[p] = r.ProfileID
					more = append(more, r.ProfileID)
				}
			}
		}
		next = more
	}
	for _, r := range f {
		if slices.Contains(absorbed, r.ProfileID) {
			look.pointing = append(look.pointing, r)
		}
	}
	return look
}

// load runs one batch through planIdentities against the fake table.
func (f fakeTable) load(changes ...*profilev1.ProfileChange) []identityRow {
	rows := planIdentities("shop", changes, f.lookup("shop", changes))
	for _, r := range rows {
		f[identityKey{r.WorkspaceID, r.Type, r.Value}] = r
	}
	return rows
}

func (f fakeTable) mapping() map[string]string {
	out := map[string]string{}
	for k, r := range f {
		out[k.typ+":"+k.value] = r.ProfileID
	}
	return out
}

func TestIdentitiesFromChanges(t *testing.T) {
	f := fakeTable{}
	rows := f.load(created("c1", "p1", "anonymous_id:a1"), added("c2", "p1", "user_id:u1", "email:ann@example.com"))
	if len(rows) != 3 || rows[0].ChangeID != "c1" || rows[0].Type != "anonymous_id" {
		t.Fatalf("rows %+v", rows)
	}
	// A second device's profile is merged into the first: its identifiers
	// move (the stitcher does not list them again), and its id forwards.
	f.load(created("c3", "p2", "anonymous_id:a2"))
	rows = f.load(merged("c4", "p1", []string{"p2"}))
	want := map[string]string{
		"anonymous_id:a1": "p1", "user_id:u1": "p1", "email:ann@example.com": "p1",
		"anonymous_id:a2": "p1", "$profile_id:p2": "p1",
	}
	if got := f.mapping(); !maps.Equal(got, want) {
		t.Fatalf("after merge: %v, want %v", got, want)
	}
	if len(rows) != 2 {
		t.Errorf("merge wrote %d rows (%+v), want the forward and the moved identifier", len(rows), rows)
	}
	for _, r := range rows {
		if r.ChangeID != "c4" {
			t.Errorf("row %+v does not name the merge as its cause", r)
		}
	}
	// Loading the same batch again writes the same mapping.
	again := f.load(merged("c4", "p1", []string{"p2"}))
	if got := f.mapping(); !maps.Equal(got, want) || len(again) != 1 {
		t.Fatalf("replayed merge: %v (%d rows), want %v (only the forward row again)", got, len(again), want)
	}
	// A deleted profile writes nothing.
	if rows := f.load(change("c5", "p1", profilev1.ChangeKind_CHANGE_KIND_DELETED, nil, "email:x@example.com")); len(rows) != 0 {
		t.Errorf("DELETED wrote %+v", rows)
	}
}

// TestIdentitiesAnyOrder loads a chain of merges (p1 into p2, then p2 into
// p3) in every order, one change per batch and all in one batch: every
// order ends with every identifier and every absorbed id on p3.
func TestIdentitiesAnyOrder(t *testing.T) {
	changes := []*profilev1.ProfileChange{
		created("c1", "p1", "anonymous_id:a1"),
		created("c2", "p2", "user_id:u2"),
		created("c3", "p3", "email:e3"),
		merged("c4", "p2", []string{"p1"}),
		merged("c5", "p3", []string{"p2"}, "phone:+4930123"),
	}
	want := map[string]string{
		"anonymous_id:a1": "p3", "user_id:u2": "p3", "email:e3": "p3", "phone:+4930123": "p3",
		"$profile_id:p1": "p3", "$profile_id:p2": "p3",
	}
	for _, order := range permutations(len(changes)) {
		f := fakeTable{}
		for _, i := range order {
			f.load(changes[i])
		}
		if got := f.mapping(); !maps.Equal(got, want) {
			t.Fatalf("order %v: %v, want %v", order, got, want)
		}
		batch := fakeTable{}
		var all []*profilev1.ProfileChange
		for _, i := range order {
			all = append(all, changes[i])
		}
		batch.load(all...)
		if got := batch.mapping(); !maps.Equal(got, want) {
			t.Fatalf("one batch in order %v: %v, want %v", order, got, want)
		}
	}
}

func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestIdentitiesRepairLaggingChain(t *testing.T) {
	// Two loaders raced: p1 -> p2 was written after p2 -> p3 without seeing
	// it. The next change touching p1 resolves the chain.
	f := fakeTable{
		identityKey{"shop", profileIDType, "p1"}: {WorkspaceID: "shop", Type: profileIDType, Value: "p1", ProfileID: "p2"},
		identityKey{"shop", profileIDType, "p2"}: {WorkspaceID: "shop", Type: profileIDType, Value: "p2", ProfileID: "p3"},
	}
	f.load(added("c9", "p1", "email:late@example.com"))
	want := map[string]string{"$profile_id:p1": "p3", "$profile_id:p2": "p3", "email:late@example.com": "p3"}
	if got := f.mapping(); !maps.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
}

func TestIdentitiesCycleTerminates(t *testing.T) {
	f := fakeTable{}
	f.load(merged("c1", "p2", []string{"p1"}))
	// A split brought p1 back, and a later merge folds p2 into it.
	f.load(merged("c2", "p1", []string{"p2"}, "user_id:u"))
	want := map[string]string{"$profile_id:p1": "p1", "$profile_id:p2": "p1", "user_id:u": "p1"}
	if got := f.mapping(); !maps.Equal(got, want) {
		t.Fatalf("cycle: %v, want %v", got, want)
	}
}

func TestVersionClockIncreases(t *testing.T) {
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := versionClock{now: func() time.Time { return fixed }}
	_, a := c.next()
	_, b := c.next()
	if b <= a {
		t.Fatalf("versions %d then %d", a, b)
	}
}

// TestIdentitiesThroughClickHouse loads a chain of merges one change per
// batch through the handler into a real ClickHouse, in the natural order
// (merges find the rows pointing at the absorbed profile in the table) and
// survivors first (changes find the forward rows): both leave every row on
// the last survivor.
func TestIdentitiesThroughClickHouse(t *testing.T) {
	changes := []*profilev1.ProfileChange{
		created("c1", "p1", "anonymous_id:a1"),
		created("c2", "p2", "user_id:u2"),
		merged("c4", "p2", []string{"p1"}),
		created("c3", "p3", "email:e3"),
		merged("c5", "p3", []string{"p2"}, "phone:+4930123"),
	}
	want := map[string]string{
		"anonymous_id:a1": "p3", "user_id:u2": "p3", "email:e3": "p3", "phone:+4930123": "p3",
		"$profile_id:p1": "p3", "$profile_id:p2": "p3",
	}
	for name, order := range map[string][]int{"natural": {0, 1, 2, 3, 4}, "survivors first": {4, 3, 2, 1, 0}} {
		t.Run(name, func(t *testing.T) {
			conn, _ := migrated(t)
			names := topics.Defaults()
			h := newHandler(conn, names, nil)
			ctx := context.Background()
			for _, i := range order {
				b, err := proto.Marshal(changes[i])
				if err != nil {
					t.Fatal(err)
				}
				if _, err := h.Handle(ctx, []kafka.Message{{Topic: names.Profiles, Value: b}}); err != nil {
					t.Fatal(err)
				}
			}
			rows, err := conn.Query(ctx, "SELECT identifier_type, identifier_value, profile_id FROM identities FINAL")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]string{}
			for rows.Next() {
				var typ, value, p string
				if err := rows.Scan(&typ, &value, &p); err != nil {
					t.Fatal(err)
				}
				got[typ+":"+value] = p
			}
			if !maps.Equal(got, want) {
				t.Fatalf("identities %v, want %v", got, want)
			}
		})
	}
}
