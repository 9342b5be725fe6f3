package privacy

import (
	"context"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// TestEraseRedis erases a person from the graph (ClickHouse is covered by
// the API's end-to-end test): every identifier suppressed, the profile gone,
// the request audited; erasing an unknown identifier still suppresses it.
func TestEraseRedis(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws, ctx := testinfra.Unique(t), context.Background()
	g := identity.New(rdb, identity.DefaultConfig())
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, ids := range [][]identity.Identifier{{{Type: "user_id", Value: "u"}, {Type: "anonymous_id", Value: "a"}}, {{Type: "anonymous_id", Value: "b"}}, {{Type: "user_id", Value: "u"}, {Type: "anonymous_id", Value: "b"}}} {
		if _, err := g.Apply(ctx, identity.Update{Workspace: ws, MessageID: string(rune('0' + i)), Time: at, Identifiers: ids}); err != nil {
			t.Fatal(err)
		}
	}
	sup := suppression.New(rdb)
	s := &Service{Graph: g, Suppression: sup, Redis: rdb}
	rep, err := s.Erase(ctx, ws, identity.Identifier{Type: "anonymous_id", Value: "b"}, "ticket 1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != "completed" || len(rep.Suppressed) != 3 || len(rep.ProfileIDs) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	for _, id := range []string{"u", "a", "b"} {
		typ := "anonymous_id"
		if id == "u" {
			typ = "user_id"
		}
		if _, err := g.Lookup(ctx, ws, identity.Identifier{Type: typ, Value: id}); err != identity.ErrNotFound {
			t.Fatalf("%s:%s still resolves: %v", typ, id, err)
		}
		if got, _ := sup.Check(ctx, ws, []suppression.Identifier{{Type: typ, Value: id}}); !got[0] {
			t.Fatalf("%s:%s not suppressed", typ, id)
		}
	}
	if keys, _ := rdb.Keys(ctx, "fp:{"+ws+"}:p:*").Result(); len(keys) != 0 {
		t.Fatalf("profile keys left: %v", keys)
	}
	rep2, err := s.Erase(ctx, ws, identity.Identifier{Type: "email", Value: "never@seen.io"}, "ticket 2")
	if err != nil || len(rep2.ProfileIDs) != 0 || len(rep2.Suppressed) != 1 {
		t.Fatalf("unknown person: %+v, %v", rep2, err)
	}
	if audit, _ := s.Audit(ctx, ws, 10); len(audit) != 2 || audit[0].Reason != "ticket 2" || audit[1].Reason != "ticket 1" {
		t.Fatalf("audit = %+v", audit)
	}
}
