package testinfra

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/redisclient"
)

// TestUniqueDropsItsWorkspaceKeys: the Redis keys of a workspace named by
// Unique (and of workspaces named after it) go when the test ends; other
// keys stay.
func TestUniqueDropsItsWorkspaceKeys(t *testing.T) {
	rdb := redisclient.New(Redis(t))
	defer rdb.Close()
	ctx := context.Background()
	other := "fp:{not-" + Unique(t) + "}:kept"
	if err := rdb.Set(ctx, other, "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	defer rdb.Del(ctx, other)
	var mine []string
	t.Run("writes", func(t *testing.T) {
		ws := Unique(t)
		mine = []string{"fp:{" + ws + "}:p:1", "fp:{" + ws + "-other}:x"}
		for _, k := range mine {
			if err := rdb.HSet(ctx, k, "f", "v").Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	for _, k := range mine {
		if n, err := rdb.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s still there after its test (%d, %v)", k, n, err)
		}
	}
	if _, err := rdb.Get(ctx, other).Result(); err == redis.Nil {
		t.Errorf("%s, another workspace's key, went too", other)
	}
}
