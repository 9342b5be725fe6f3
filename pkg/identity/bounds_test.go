package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/testinfra"
)

func TestProfileBounds(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	id := []Identifier{{"user_id", "u1"}}
	traits := map[string]json.RawMessage{}
	for i := 0; i < MaxTraits+3; i++ {
		traits[fmt.Sprintf("t%04d", i)] = json.RawMessage(`1`)
	}
	traits["huge"] = json.RawMessage(`"` + strings.Repeat("x", MaxTraitBytes) + `"`)
	traits[strings.Repeat("k", MaxTraitKeyBytes+1)] = json.RawMessage(`1`)
	res, err := g.Apply(ctx, Update{Workspace: ws, MessageID: "m0", Time: t0, Identifiers: id, Traits: traits, Counter: "identify"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Dropped) != "map[trait_size:2 traits:3]" {
		t.Fatalf("dropped %v, want the 3 traits beyond %d, the huge value and the long name", res.Dropped, MaxTraits)
	}
	// At the bound, a new trait is dropped by the script.
	res, _ = g.Apply(ctx, Update{Workspace: ws, MessageID: "m0b", Time: t0, Identifiers: id, Traits: map[string]json.RawMessage{"new": json.RawMessage(`1`)}})
	if fmt.Sprint(res.Dropped) != "map[traits:1]" {
		t.Fatalf("a new trait at the bound: dropped %v", res.Dropped)
	}
	for i := 0; i < MaxCounters+2; i++ {
		res, err := g.Apply(ctx, Update{Workspace: ws, MessageID: fmt.Sprintf("c%d", i), Time: t0.Add(time.Second), Identifiers: id,
			Counter: fmt.Sprintf("track:E%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= MaxCounters-1; (res.Dropped[DropCounters] == 1) != want { // "identify" is one
			t.Fatalf("counter %d: dropped %v", i, res.Dropped)
		}
	}
	p, err := g.Lookup(ctx, ws, id[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Traits) != MaxTraits || p.Traits["huge"] != nil || len(p.Counters) != MaxCounters {
		t.Fatalf("profile holds %d traits (huge: %v) and %d counters", len(p.Traits), p.Traits["huge"] != nil, len(p.Counters))
	}
	// The identifier's contributions hold no more than the profile took.
	if n := rdb.HLen(ctx, Prefix(ws)+"i:user_id:u1").Val(); n != 2*MaxTraits+MaxCounters+2 {
		t.Fatalf("contributions of u1 hold %d fields, want %d", n, 2*MaxTraits+MaxCounters+2)
	}
	// A trait it already has still updates at the bound.
	res, _ = g.Apply(ctx, Update{Workspace: ws, MessageID: "m1", Time: t0.Add(time.Minute), Identifiers: id, Traits: map[string]json.RawMessage{"t0000": json.RawMessage(`2`)}})
	if len(res.TraitChanges) != 1 || len(res.Dropped) != 0 {
		t.Fatalf("update at the bound: %+v", res)
	}
}

// TestMergeBounds: two full profiles merge into one that keeps its bounds.
func TestMergeBounds(t *testing.T) {
	g, _ := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	for _, who := range []string{"a", "b"} {
		traits := map[string]json.RawMessage{}
		for i := 0; i < 300; i++ {
			traits[fmt.Sprintf("%s%03d", who, i)] = json.RawMessage(`1`)
		}
		var us []Update
		us = append(us, Update{Workspace: ws, MessageID: who, Time: t0, Identifiers: []Identifier{{"anonymous_id", who}}, Traits: traits})
		for i := 0; i < 150; i++ {
			us = append(us, Update{Workspace: ws, MessageID: fmt.Sprintf("%s-c%d", who, i), Time: t0, Identifiers: []Identifier{{"anonymous_id", who}},
				Counter: fmt.Sprintf("track:%s%d", who, i)})
		}
		if _, err := g.ApplyBatch(ctx, us); err != nil {
			t.Fatal(err)
		}
	}
	res, err := g.Apply(ctx, Update{Workspace: ws, MessageID: "join", Time: t0, Identifiers: []Identifier{{"user_id", "u"}, {"anonymous_id", "a"}, {"anonymous_id", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Merged) != 1 || fmt.Sprint(res.Dropped) != "map[counters:100 traits:100]" {
		t.Fatalf("merge: %+v", res)
	}
	p, _ := g.Lookup(ctx, ws, Identifier{"user_id", "u"})
	if len(p.Traits) != MaxTraits || len(p.Counters) != MaxCounters || len(p.Identities) != 3 {
		t.Fatalf("merged profile: %d traits, %d counters, %v", len(p.Traits), len(p.Counters), p.Identities)
	}
}

// TestIdentifierAndEvidenceBounds: a source sending many external id types
// cannot grow a profile beyond MaxIdentifiers, nor its evidence beyond
// MaxEdges.
func TestIdentifierAndEvidenceBounds(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	var ids []Identifier
	for ty := 0; ty < 12; ty++ {
		for v := 0; v < 5; v++ {
			ids = append(ids, Identifier{fmt.Sprintf("ext%02d", ty), fmt.Sprint(v)})
		}
	}
	res, err := g.Apply(ctx, Update{Workspace: ws, MessageID: "many", Time: t0, Identifiers: ids})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != MaxIdentifiers || fmt.Sprint(res.Dropped) != "map[identifiers:10]" {
		t.Fatalf("added %d, dropped %v", len(res.Added), res.Dropped)
	}
	res, _ = g.Apply(ctx, Update{Workspace: ws, MessageID: "one-more", Time: t0, Identifiers: []Identifier{ids[0], {"crm", "c1"}}})
	if fmt.Sprint(res.Blocked) != "[{crm:c1 max_identifiers}]" {
		t.Fatalf("one more identifier: %+v", res)
	}
	// Pairs of identifiers the profile holds, each new evidence.
	var us []Update
	for i := 0; i < MaxIdentifiers; i++ {
		for j := i + 2; j < MaxIdentifiers; j++ {
			us = append(us, Update{Workspace: ws, MessageID: fmt.Sprintf("pair-%d-%d", i, j), Time: t0, Identifiers: []Identifier{ids[i], ids[j]}})
		}
	}
	rs, err := g.ApplyBatch(ctx, us)
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, r := range rs {
		dropped += r.Dropped[DropEvidence]
	}
	edges := rdb.HLen(ctx, Prefix(ws)+"p:"+res.ProfileID+":e").Val()
	if edges != MaxEdges || dropped != MaxIdentifiers-1+len(us)-MaxEdges {
		t.Fatalf("%d edges, %d dropped", edges, dropped)
	}
}

// TestBlockedMergeLog: every refused merge is logged; the log is capped.
func TestBlockedMergeLog(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	var us []Update
	for i := 0; i < MaxBlockedLog+5; i++ {
		us = append(us, Update{Workspace: ws, MessageID: fmt.Sprint(i), Time: t0.Add(time.Duration(i) * time.Second),
			Identifiers: []Identifier{{"user_id", fmt.Sprint("u", i)}, {"anonymous_id", "kiosk"}}})
	}
	res, err := g.ApplyBatch(ctx, us)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[1].Blocked) != 1 || res[1].Blocked[0].Reason != BlockLimit || !res[1].Blocked[0].Profile() {
		t.Fatalf("second user on the kiosk: %+v", res[1])
	}
	if n := rdb.LLen(ctx, Prefix(ws)+"blocked").Val(); n != MaxBlockedLog {
		t.Fatalf("log holds %d entries, want %d", n, MaxBlockedLog)
	}
	log, err := g.BlockedMerges(ctx, ws, 2)
	last := MaxBlockedLog + 4
	if err != nil || len(log) != 2 || log[0].MessageID != fmt.Sprint(last) || log[0].What != res[0].ProfileID || log[0].Reason != BlockLimit ||
		log[0].ProfileID != res[last].ProfileID || !log[0].At.Equal(t0.Add(time.Duration(last)*time.Second)) {
		t.Fatalf("log = %+v, %v", log, err)
	}
}

// TestEraseClearsDenialsAndLog: erasing a person removes what names them
// from other identifiers' denials and from the blocked-merge log.
func TestEraseClearsDenialsAndLog(t *testing.T) {
	g, rdb := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	for _, e := range wrongEmail {
		if _, err := g.Apply(ctx, e.update(ws)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Unlink(ctx, ws, Identifier{"email", "ann@x.io"}, Identifier{"anonymous_id", "dev-b"}, "form bug", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply(ctx, ev{"e6", 5, "email:ann@x.io anonymous_id:dev-b", "", "identify"}.update(ws)); err != nil {
		t.Fatal(err)
	}
	ann, _ := g.Lookup(ctx, ws, Identifier{"email", "ann@x.io"})
	if _, err := g.Erase(ctx, ws, ann.ID); err != nil {
		t.Fatal(err)
	}
	if m := rdb.SMembers(ctx, Prefix(ws)+"deny:anonymous_id:dev-b").Val(); len(m) != 0 {
		t.Fatalf("dev-b's denials still name %v", m)
	}
	if log, _ := g.BlockedMerges(ctx, ws, 0); len(log) != 0 {
		t.Fatalf("the log still names Ann: %+v", log)
	}
	if _, err := g.Lookup(ctx, ws, Identifier{"anonymous_id", "dev-b"}); err != nil {
		t.Fatalf("Bob went too: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"defaults", DefaultConfig(), ""},
		{"custom", Config{Limits: map[string]int{"user_id": 2, "crm_id": 1}, DefaultLimit: 3, Priorities: []string{"crm_id", "user_id"}, Blocked: []string{"qa@x.io"}}, ""},
		{"zero default", Config{DefaultLimit: 0}, "default_limit 0: must be 1..50"},
		{"limit too high", Config{DefaultLimit: 5, Limits: map[string]int{"email": 51}}, "limit of email is 51: must be 1..50"},
		{"bad type", Config{DefaultLimit: 5, Limits: map[string]int{"E-Mail,x": 1}}, `limits: identifier type "E-Mail,x"`},
		{"priority twice", Config{DefaultLimit: 5, Priorities: []string{"email", "email"}}, "priorities: email is listed twice"},
		{"empty blocked value", Config{DefaultLimit: 5, Blocked: []string{" "}}, "blocked_values[0] is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	ids := []Identifier{{"user_id", "u1"}, {"email", "Test@Example.com"}, {"anonymous_id", "a1"}, {"phone", "+4930123"}}
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "[user_id:u1 email:Test@Example.com anonymous_id:a1 phone:+4930123]"},
		{Config{Blocked: []string{"test@example.com"}}, "[user_id:u1 anonymous_id:a1 phone:+4930123]"},
		{Config{Priorities: []string{"email", "phone"}}, "[email:Test@Example.com phone:+4930123 user_id:u1 anonymous_id:a1]"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(tc.cfg.Prepare(ids)); got != tc.want {
			t.Errorf("%+v: Prepare = %s, want %s", tc.cfg, got, tc.want)
		}
	}
}

// TestPerUpdateConfig: a workspace that allows two user ids per profile
// (say, a login and a legacy id) merges what the default keeps apart.
func TestPerUpdateConfig(t *testing.T) {
	g, _ := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	two := &Config{Limits: map[string]int{"user_id": 2}, DefaultLimit: 5}
	for i, ids := range [][]Identifier{{{"user_id", "new"}, {"anonymous_id", "d"}}, {{"user_id", "legacy"}, {"anonymous_id", "d"}}} {
		if _, err := g.Apply(ctx, Update{Workspace: ws, MessageID: fmt.Sprint(i), Time: t0, Identifiers: ids, Config: two}); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := g.Lookup(ctx, ws, Identifier{"user_id", "new"})
	if fmt.Sprint(p.Identities) != "[anonymous_id:d user_id:legacy user_id:new]" {
		t.Fatalf("identities = %v", p.Identities)
	}
}
