package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

func TestTraitEquals(t *testing.T) {
	for _, tt := range []struct {
		raw, value string
		want       bool
	}{
		{`"pro"`, "pro", true},
		{`"pro"`, "Pro", false},
		{`"42"`, "42", true},
		{`42`, "42", true},
		{`42.0`, "42", true},
		{`42`, "42.5", false},
		{`true`, "true", true},
		{`false`, "true", false},
		{`null`, "null", true},
		{`{"a":1}`, `{"a":1}`, false},
		{`[1]`, "1", false},
		{`not json`, "not json", false},
	} {
		if got := TraitEquals(json.RawMessage(tt.raw), tt.value); got != tt.want {
			t.Errorf("TraitEquals(%s, %q) = %v", tt.raw, tt.value, got)
		}
	}
}

func TestSearchTrait(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	g := New(rdb, DefaultConfig())
	ws, ctx := testinfra.Unique(t), context.Background()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	want := map[string]bool{}
	for i := 0; i < 30; i++ {
		plan := "free"
		if i%3 == 0 {
			plan = "pro"
		}
		r, err := g.Apply(ctx, Update{Workspace: ws, MessageID: fmt.Sprint("m", i), Time: at, Identifiers: []Identifier{{"user_id", fmt.Sprint(i)}},
			Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"` + plan + `"`)}})
		if err != nil {
			t.Fatal(err)
		}
		if plan == "pro" {
			want[r.ProfileID] = true
		}
	}
	got := map[string]bool{}
	cursor, pages := uint64(0), 0
	for {
		pids, next, err := g.SearchTrait(ctx, ws, "plan", "pro", cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pids {
			got[p] = true
		}
		pages++
		if cursor = next; cursor == 0 {
			break
		}
	}
	if len(got) != len(want) || pages < 2 {
		t.Fatalf("found %d of %d in %d pages", len(got), len(want), pages)
	}
	for p := range want {
		if !got[p] {
			ids := make([]string, 0, len(got))
			for g := range got {
				ids = append(ids, g)
			}
			sort.Strings(ids)
			t.Fatalf("%s missing from %v", p, ids)
		}
	}
	if pids, _, _ := g.SearchTrait(ctx, ws+"-other", "plan", "pro", 0, 100); len(pids) != 0 {
		t.Fatal("search leaked across workspaces")
	}
}
