// Package dedup remembers which message ids a source already delivered, in
// Redis, so the validator can refuse a duplicate within a window (24 h by
// default) — SDK retries and replays produce them all the time.
//
// Redis layout (one workspace's keys share the hash tag {ws}, so they live on
// one Redis Cluster shard):
//
//	fp:{<workspace>}:dedup:<source>:<n>      HASH message id → origin of its first
//	                                         delivery (topic, partition, offset and
//	                                         Kafka timestamp), for ids first seen in
//	                                         bucket n (Unix time / bucket width);
//	                                         expires window + 2 widths after it was
//	                                         written.
//
// A bucket is a quarter of the window in whole hours (6 h for the 24 h
// default), so Seen asks five buckets and an id is remembered for at least
// the window and at most a quarter longer. Bucket numbers depend on the
// width: changing -dedup.window starts a fresh set of buckets.
//
// Seen asks every bucket inside the window with HMGET and returns the
// recorded origin; Record writes with HSETNX, so the first origin sticks.
// Both are idempotent, so go-redis retries are harmless. Knowing the origin
// tells a Kafka redelivery of the very same message (same origin: its
// outputs were already produced, do nothing) from a real duplicate (another
// message with a message id already seen: refuse it). The validator calls
// Record only after the event was acknowledged on the valid topic: a crash
// between the two leads to the event being produced again (at least once),
// never to it being marked as seen and lost.
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

// Entry is an ID with the origin of the delivery being recorded.
type Entry struct {
	ID
	Origin string
}

// Store is the Redis-backed dedup window.
type Store struct {
	rdb    redis.UniversalClient
	window time.Duration
	width  int64 // bucket width in seconds
	now    func() time.Time
}

// New returns a store with the given window (at least one hour).
func New(rdb redis.UniversalClient, window time.Duration) *Store {
	if window < time.Hour {
		window = time.Hour
	}
	hours := max(1, int64((window/4+time.Hour-1)/time.Hour))
	return &Store{rdb: rdb, window: window, width: hours * 3600, now: time.Now}
}

func bucketKey(workspace, source string, n int64) string {
	return fmt.Sprintf("fp:{%s}:dedup:%s:%d", workspace, source, n)
}

type group struct{ workspace, source string }

// Seen returns, for each id, the origin recorded for it within the window,
// or "" when it was not seen. A later repeat of an id within ids that was not
// recorded before gets InBatch (a duplicate inside one batch).
func (s *Store) Seen(ctx context.Context, ids []ID) ([]string, error) {
	out := make([]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	byGroup := map[group][]ID{}
	firstAt := map[ID]int{}
	for i, id := range ids {
		if _, dup := firstAt[id]; dup {
			continue
		}
		firstAt[id] = i
		g := group{id.Workspace, id.Source}
		byGroup[g] = append(byGroup[g], id)
	}
	now := s.now().Unix() / s.width
	oldest := s.now().Add(-s.window).Unix() / s.width
	type query struct {
		ids []ID
		cmd *redis.SliceCmd
	}
	var queries []query
	pipe := s.rdb.Pipeline()
	for g, gids := range byGroup {
		fields := make([]string, len(gids))
		for j, id := range gids {
			fields[j] = id.MessageID
		}
		// Oldest bucket last, so the older record (the first delivery) wins.
		for h := now; h >= oldest; h-- {
			queries = append(queries, query{gids, pipe.HMGet(ctx, bucketKey(g.workspace, g.source, h), fields...)})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("checking dedup window: %w", err)
	}
	recorded := map[ID]string{}
	for _, q := range queries {
		vals, err := q.cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("checking dedup window: %w", err)
		}
		for j, v := range vals {
			if origin, ok := v.(string); ok && origin != "" {
				recorded[q.ids[j]] = origin
			}
		}
	}
	for i, id := range ids {
		switch origin := recorded[id]; {
		case origin != "":
			out[i] = origin
		case firstAt[id] != i:
			out[i] = InBatch
		}
	}
	return out, nil
}

// InBatch is the origin Seen reports for the second copy of an id in one call.
const InBatch = "batch"

// Record stores the entries in the current bucket; an id already recorded
// there keeps its first origin.
func (s *Store) Record(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	hour := s.now().Unix() / s.width
	// The bucket must outlive the window measured from its last second.
	ttl := s.window + 2*time.Duration(s.width)*time.Second
	pipe := s.rdb.Pipeline()
	keys := map[string]bool{}
	for _, e := range entries {
		k := bucketKey(e.Workspace, e.Source, hour)
		pipe.HSetNX(ctx, k, e.MessageID, e.Origin)
		keys[k] = true
	}
	for k := range keys {
		pipe.Expire(ctx, k, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("recording dedup ids: %w", err)
	}
	return nil
}
