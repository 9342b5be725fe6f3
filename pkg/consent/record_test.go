package consent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

func TestUpdateNormalize(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	many := map[string]bool{}
	for i := 0; i <= MaxCategories; i++ {
		many[fmt.Sprint("c", i)] = true
	}
	for _, tt := range []struct {
		name string
		in   Update
		want string // fmt of the categories, or the error
	}{
		{"folds", Update{Categories: map[string]bool{" Analytics ": true, "marketing": false}, Source: "cmp", At: at}, "map[analytics:true marketing:false]"},
		{"empty", Update{Source: "cmp", At: at}, "categories is empty"},
		{"no source", Update{Categories: map[string]bool{"a": true}, At: at}, "source must name"},
		{"no time", Update{Categories: map[string]bool{"a": true}, Source: "cmp"}, "time of the decision"},
		{"bad name", Update{Categories: map[string]bool{"ads/partners": true}, Source: "cmp", At: at}, `category "ads/partners"`},
		{"twice", Update{Categories: map[string]bool{"Ads": true, "ads": false}, Source: "cmp", At: at}, "sent twice"},
		{"too many", Update{Categories: many, Source: "cmp", At: at}, "at most 50"},
	} {
		got, err := tt.in.Normalize()
		s := fmt.Sprint(got.Categories)
		if err != nil {
			s = err.Error()
		}
		if !strings.Contains(s, tt.want) {
			t.Errorf("%s: %s; want %s", tt.name, s, tt.want)
		}
		if err == nil && got.At.Location() != time.UTC {
			t.Errorf("%s: time not in UTC", tt.name)
		}
	}
}

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	email := State{"analytics": {Granted: true, At: t0, Identifier: "email:a@b.c"}, "marketing": {Granted: true, At: t0.Add(time.Hour), Identifier: "email:a@b.c"}}
	user := State{"analytics": {Granted: false, At: t0.Add(time.Minute), Identifier: "user_id:42"}, "marketing": {Granted: false, At: t0, Identifier: "user_id:42"}}
	tie := State{"analytics": {Granted: true, At: t0.Add(time.Minute), Identifier: "anonymous_id:z"}}
	got := Merge(email, user)
	if fmt.Sprint(got.Granted()) != "map[analytics:false marketing:true]" {
		t.Fatalf("Merge = %v", got)
	}
	if a, b := Merge(user, tie)["analytics"], Merge(tie, user)["analytics"]; a != b || a.Identifier != "anonymous_id:z" {
		t.Fatalf("a tie depends on order: %v / %v", a, b)
	}
	if len(Merge()) != 0 {
		t.Fatal("Merge of nothing is not empty")
	}
}

func TestStoreAgainstRedis(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	s := NewStore(rdb)
	ctx := context.Background()
	ws, other := testinfra.Unique(t), testinfra.Unique(t)+"-other"
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	email, user := Identifier{"email", "a@b.c"}, Identifier{"user_id", "42"}
	rec := func(id Identifier, at time.Time, cats map[string]bool) []string {
		t.Helper()
		u, err := Update{Categories: cats, Source: "test", At: at}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		applied, err := s.Record(ctx, ws, id, u)
		if err != nil {
			t.Fatal(err)
		}
		return applied
	}
	if got := rec(email, t0.Add(time.Hour), map[string]bool{"analytics": true, "marketing": false}); len(got) != 2 {
		t.Fatalf("first record applied %v", got)
	}
	// An older decision arriving late changes nothing it is older than.
	if got := rec(email, t0, map[string]bool{"analytics": false, "ads": true}); fmt.Sprint(got) != "[ads]" {
		t.Fatalf("late record applied %v; want [ads]", got)
	}
	rec(user, t0.Add(2*time.Hour), map[string]bool{"marketing": true})
	st, err := s.Read(ctx, ws, []Identifier{email, user, {"anonymous_id", "none"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.Granted()) != "map[ads:true analytics:true marketing:true]" || st["marketing"].Identifier != "user_id:42" || st["analytics"].Source != "test" || !st["analytics"].At.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Read = %+v", st)
	}
	if st, _ := s.Read(ctx, other, []Identifier{email, user}); len(st) != 0 {
		t.Fatalf("consent leaked across workspaces: %v", st)
	}
	if err := s.Delete(ctx, ws, []Identifier{email, user}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Read(ctx, ws, []Identifier{email, user}); len(st) != 0 {
		t.Fatalf("after Delete: %v", st)
	}
}

// An identifier holds at most MaxStoredCategories categories: the update
// that would pass the bound writes nothing; updates of held categories
// still apply.
func TestStoreBoundsCategories(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	s := NewStore(rdb)
	ctx := context.Background()
	ws, id := testinfra.Unique(t), Identifier{"email", "many@b.c"}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for n := 0; n < MaxStoredCategories; n += MaxCategories {
		cats := map[string]bool{}
		for i := n; i < n+MaxCategories; i++ {
			cats[fmt.Sprintf("c%03d", i)] = true
		}
		if _, err := s.Record(ctx, ws, id, Update{Categories: cats, Source: "t", At: at}); err != nil {
			t.Fatalf("filling to %d: %v", n+MaxCategories, err)
		}
	}
	_, err := s.Record(ctx, ws, id, Update{Categories: map[string]bool{"c000": false, "one-more": true}, Source: "t", At: at.Add(time.Hour)})
	if !errors.Is(err, ErrTooManyCategories) {
		t.Fatalf("past the bound: err %v; want ErrTooManyCategories", err)
	}
	st, _ := s.Read(ctx, ws, []Identifier{id})
	if len(st) != MaxStoredCategories || !st["c000"].Granted {
		t.Fatalf("a refused update wrote: %d categories, c000 %+v", len(st), st["c000"])
	}
	if got, err := s.Record(ctx, ws, id, Update{Categories: map[string]bool{"c000": false}, Source: "t", At: at.Add(time.Hour)}); err != nil || len(got) != 1 {
		t.Fatalf("updating a held category at the bound: %v %v", got, err)
	}
}
