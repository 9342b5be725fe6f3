package segstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Backfill progress: a new segment (or version) gets its initial membership
// by a scan over the workspace's profiles, one instance at a time (a
// lease), resumable from the saved cursor when that instance stops.

// BackfillKey names a segment version's backfill.
func BackfillKey(segment string, version uint32) string {
	return segment + "@" + strconv.FormatUint(uint64(version), 10)
}

// ErrLeaseLost means another instance holds the backfill now.
var ErrLeaseLost = errors.New("backfill lease lost")

// BackfillStatus is a backfill's saved progress.
type BackfillStatus struct {
	Done   bool
	Cursor uint64
}

// Backfill returns a backfill's progress.
func (s *Store) Backfill(ctx context.Context, ws, key string) (BackfillStatus, error) {
	v, err := s.rdb.HGet(ctx, backfillKey(ws), key).Result()
	if errors.Is(err, redis.Nil) {
		return BackfillStatus{}, nil
	}
	if err != nil {
		return BackfillStatus{}, fmt.Errorf("reading backfill %s: %w", key, err)
	}
	if v == "done" {
		return BackfillStatus{Done: true}, nil
	}
	c, _ := strconv.ParseUint(v, 10, 64)
	return BackfillStatus{Cursor: c}, nil
}

// AcquireBackfill takes (or renews, for the same owner) the lease on a
// backfill; false means another instance holds it.
func (s *Store) AcquireBackfill(ctx context.Context, ws, key, owner string, lease time.Duration) (bool, error) {
	ok, err := leaseScript.Run(ctx, s.rdb, []string{backfillLeaseKey(ws, key)}, owner, lease.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("taking backfill lease %s: %w", key, err)
	}
	return ok == 1, nil
}

// SaveBackfill records progress (cursor 0 with done) while owner holds the
// lease, and releases the lease when done.
func (s *Store) SaveBackfill(ctx context.Context, ws, key, owner string, cursor uint64, done bool, lease time.Duration) error {
	ok, err := s.AcquireBackfill(ctx, ws, key, owner, lease)
	if err != nil {
		return err
	}
	if !ok {
		return ErrLeaseLost
	}
	v := strconv.FormatUint(cursor, 10)
	if done {
		v = "done"
	}
	if err := s.rdb.HSet(ctx, backfillKey(ws), key, v).Err(); err != nil {
		return fmt.Errorf("saving backfill %s: %w", key, err)
	}
	if done {
		s.rdb.Del(ctx, backfillLeaseKey(ws, key))
	}
	return nil
}

var leaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)
