package testinfra

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// dropWorkspaceKeys deletes the keys of the workspaces whose id starts with
// id ("fp:{<id>*"), on the Redis FP_REDIS_ADDR names, if any; quietly, as a
// test's last cleanup (the test itself may have stopped that Redis). A
// container started for the test binary goes with it, keys and all.
func dropWorkspaceKeys(id string) {
	addr := os.Getenv("FP_REDIS_ADDR")
	if addr == "" || reachable(addr) != nil {
		return
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second})
	defer rdb.Close()
	ctx := context.Background()
	it := rdb.Scan(ctx, 0, "fp:{"+id+"*", 1000).Iterator()
	var keys []string
	for it.Next(ctx) {
		if keys = append(keys, it.Val()); len(keys) == 1000 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}

// DropRedisKeys deletes every key matching pattern (a test's workspace,
// say "fp:{ws}:*"), so that tests and benchmarks run against a shared
// Redis leave nothing behind: a dataset grown by earlier runs slows the
// later ones (larger AOF rewrites, more memory to walk).
func DropRedisKeys(tb testing.TB, rdb redis.UniversalClient, pattern string) {
	tb.Helper()
	ctx := context.Background()
	it := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var keys []string
	flush := func() {
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				tb.Errorf("deleting %s: %v", pattern, err)
			}
			keys = keys[:0]
		}
	}
	for it.Next(ctx) {
		if keys = append(keys, it.Val()); len(keys) == 1000 {
			flush()
		}
	}
	flush()
	if err := it.Err(); err != nil {
		tb.Errorf("listing %s: %v", pattern, err)
	}
}
