package suppression

import (
	"context"
	"testing"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

func TestSuppressionAgainstRedis(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	l := New(rdb)
	ctx := context.Background()
	ws, other := testinfra.Unique(t), testinfra.Unique(t)+"-other"
	erased := Identifier{"email", "ada@example.com"}
	if err := l.Add(ctx, ws, erased, Identifier{"user_id", "42"}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Check(ctx, ws, []Identifier{erased, {"user_id", "42"}, {"user_id", "43"}, {"email", "42"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, false, false}; !equal(got, want) {
		t.Fatalf("Check = %v, want %v (types must not collide)", got, want)
	}
	if got, _ := l.Check(ctx, other, []Identifier{erased}); got[0] {
		t.Fatal("suppression leaked across workspaces")
	}
	members := rdb.SMembers(ctx, key(ws)).Val()
	for _, m := range members {
		if m == "ada@example.com" || m == "email:ada@example.com" {
			t.Fatal("identifier stored in clear")
		}
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
