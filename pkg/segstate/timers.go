package segstate

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Due is a profile whose timer fell due.
type Due struct {
	ProfileID string
	At        time.Time
}

//go:embed claim.lua
var claimLua string

var claimScript = redis.NewScript(claimLua)

// ClaimDue takes up to limit profiles of a workspace whose timer is due at
// now, and holds each for lease: its timer moves to now+lease, so another
// instance claims it again only if this one failed to hand it on (the
// segmenter sends a tick, and handling the tick sets the next real
// deadline). Instances can call it concurrently; each due timer goes to one.
func (s *Store) ClaimDue(ctx context.Context, ws string, now time.Time, lease time.Duration, limit int) ([]Due, error) {
	res, err := claimScript.Run(ctx, s.rdb, []string{timersKey(ws)}, now.UnixMilli(), now.Add(lease).UnixMilli(), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("claiming due timers of %s: %w", ws, err)
	}
	out := make([]Due, 0, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		ms, _ := strconv.ParseFloat(res[i+1], 64)
		out = append(out, Due{ProfileID: res[i], At: time.UnixMilli(int64(ms)).UTC()})
	}
	return out, nil
}

// NextDue returns when the workspace's earliest timer is due, and false
// when there is none.
func (s *Store) NextDue(ctx context.Context, ws string) (time.Time, bool, error) {
	z, err := s.rdb.ZRangeWithScores(ctx, timersKey(ws), 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading timers of %s: %w", ws, err)
	}
	if len(z) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(z[0].Score)).UTC(), true, nil
}

// Timer returns when a profile's timer is due, and false when it has none.
func (s *Store) Timer(ctx context.Context, ws, pid string) (time.Time, bool, error) {
	sc, err := s.rdb.ZScore(ctx, timersKey(ws), pid).Result()
	if err == redis.Nil {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return time.UnixMilli(int64(sc)).UTC(), true, nil
}
