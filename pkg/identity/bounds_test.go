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
	g, _ := graph(t)
	ws, ctx := testinfra.Unique(t), context.Background()
	id := []Identifier{{"user_id", "u1"}}
	traits := map[string]json.RawMessage{}
	for i := 0; i < MaxTraits+3; i++ {
		traits[fmt.Sprintf("t%04d", i)] = json.RawMessage(`1`)
	}
	traits["huge"] = json.RawMessage(`"` + strings.Repeat("x", MaxTraitBytes) + `"`)
	res, err := g.Apply(ctx, Update{Workspace: ws, MessageID: "m0", Time: t0, Identifiers: id, Traits: traits, Counter: "identify"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 3 {
		t.Fatalf("dropped %d traits, want the 3 beyond %d", res.Dropped, MaxTraits)
	}
	for i := 0; i < MaxCounters+2; i++ {
		if _, err := g.Apply(ctx, Update{Workspace: ws, MessageID: fmt.Sprintf("c%d", i), Time: t0.Add(time.Second), Identifiers: id,
			Counter: fmt.Sprintf("track:E%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := g.Lookup(ctx, ws, id[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Traits) != MaxTraits || p.Traits["huge"] != nil || len(p.Counters) != MaxCounters {
		t.Fatalf("profile holds %d traits (huge: %v) and %d counters", len(p.Traits), p.Traits["huge"] != nil, len(p.Counters))
	}
	// A trait it already has still updates at the bound.
	res, _ = g.Apply(ctx, Update{Workspace: ws, MessageID: "m1", Time: t0.Add(time.Minute), Identifiers: id, Traits: map[string]json.RawMessage{"t0000": json.RawMessage(`2`)}})
	if len(res.TraitChanges) != 1 || res.Dropped != 0 {
		t.Fatalf("update at the bound: %+v", res)
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
