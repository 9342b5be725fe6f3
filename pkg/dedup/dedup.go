// Package dedup remembers which message ids a source already delivered, in
// Redis, so the validator can refuse a duplicate within a window (24 h by
// default) — SDK retries and replays produce them all the time.
//
// Redis layout (one workspace's keys share the hash tag {ws}, so they live on
// one Redis Cluster shard):
//
//	fp:{<workspace>}:dedup:<source>:<hour>   SET of message ids first seen in that
//	                                         hour (Unix hours), expiring window+1h
//	                                         after the hour ends.
//
// Seen asks every hour bucket inside the window with SMISMEMBER; Record adds
// ids to the current bucket with SADD. Both are idempotent, so go-redis
// retries and stage redeliveries are harmless. The validator calls Record
// only after the event was acknowledged on the valid topic: a crash between
// the two leads to the event being produced again (at least once), never to
// it being marked as seen and lost.
//
// Memory is about 60 bytes per id kept: 1 M events a day in a 24 h window is
// ~60 MB. High-volume workspaces lower -dedup.window accordingly.
package dedup

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ID identifies one message of one source.
type ID struct {
	Workspace, Source, MessageID string
}

// Store is the Redis-backed dedup window.
type Store struct {
	rdb    redis.UniversalClient
	window time.Duration
	now    func() time.Time
}

// New returns a store with the given window (at least one hour).
func New(rdb redis.UniversalClient, window time.Duration) *Store {
	if window < time.Hour {
		window = time.Hour
	}
	return &Store{rdb: rdb, window: window, now: time.Now}
}

func bucketKey(workspace, source string, hour int64) string {
	return fmt.Sprintf("fp:{%s}:dedup:%s:%d", workspace, source, hour)
}

type group struct{ workspace, source string }

// Seen reports, for each id, whether it was recorded within the window.
// Within ids, a later repeat of an earlier id is reported as seen too.
func (s *Store) Seen(ctx context.Context, ids []ID) ([]bool, error) {
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	byGroup := map[group][]int{}
	first := map[ID]int{}
	for i, id := range ids {
		if _, dup := first[id]; dup {
			out[i] = true
			continue
		}
		first[id] = i
		g := group{id.Workspace, id.Source}
		byGroup[g] = append(byGroup[g], i)
	}
	now := s.now().Unix() / 3600
	oldest := s.now().Add(-s.window).Unix() / 3600
	type query struct {
		idx []int
		cmd *redis.BoolSliceCmd
	}
	var queries []query
	pipe := s.rdb.Pipeline()
	for g, idx := range byGroup {
		members := make([]any, len(idx))
		for j, i := range idx {
			members[j] = ids[i].MessageID
		}
		for h := oldest; h <= now; h++ {
			queries = append(queries, query{idx, pipe.SMIsMember(ctx, bucketKey(g.workspace, g.source, h), members...)})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("checking dedup window: %w", err)
	}
	for _, q := range queries {
		found, err := q.cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("checking dedup window: %w", err)
		}
		for j, f := range found {
			if f {
				out[q.idx[j]] = true
			}
		}
	}
	return out, nil
}

// Record marks ids as seen in the current hour bucket.
func (s *Store) Record(ctx context.Context, ids []ID) error {
	if len(ids) == 0 {
		return nil
	}
	hour := s.now().Unix() / 3600
	byKey := map[string][]any{}
	for _, id := range ids {
		k := bucketKey(id.Workspace, id.Source, hour)
		byKey[k] = append(byKey[k], id.MessageID)
	}
	// The bucket must outlive the window measured from its last second.
	ttl := s.window + 2*time.Hour
	pipe := s.rdb.Pipeline()
	for k, members := range byKey {
		pipe.SAdd(ctx, k, members...)
		pipe.Expire(ctx, k, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("recording dedup ids: %w", err)
	}
	return nil
}
