package testinfra

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

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
