package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The graph keeps no index by trait value (a secondary index per trait
// would double the write cost of every identify call), so a trait search
// is a bounded scan of the workspace's profile index: one call looks at
// about count profiles (SSCAN's COUNT is a hint) in two round trips and
// returns a cursor, and the caller pages on. The cost per call is bounded;
// the cost of a whole search is the workspace's profile count. ClickHouse
// (profile_changes) answers the same question for analysis.

// MaxSearchCount bounds the profiles one SearchTrait call looks at.
const MaxSearchCount = 5000

// SearchTrait pages through a workspace's live profiles and returns the ids
// of those whose trait holds value (TraitEquals), with the cursor to go on
// from (0: the scan is complete). Like SSCAN, a profile that exists and
// matches throughout the search is returned at least once.
func (g *Graph) SearchTrait(ctx context.Context, workspace, trait, value string, cursor uint64, count int64) ([]string, uint64, error) {
	return g.SearchTraitAfter(ctx, workspace, trait, value, cursor, count, "")
}

// SearchTraitAfter is SearchTrait resuming inside one scan step: the step
// at cursor is scanned again and the profiles up to and including after
// are passed over, so a caller that answered only part of a step's
// matches (ending with after) goes on where it stopped, whatever changed
// meanwhile. When after has left the set (erased, merged away), the whole
// step is looked at again: matches may repeat, never go missing (SSCAN's
// own promise).
func (g *Graph) SearchTraitAfter(ctx context.Context, workspace, trait, value string, cursor uint64, count int64, after string) ([]string, uint64, error) {
	if count <= 0 || count > MaxSearchCount {
		count = MaxSearchCount
	}
	pids, next, err := g.ScanProfiles(ctx, workspace, cursor, count)
	if err != nil {
		return nil, 0, err
	}
	if after != "" {
		for i, pid := range pids {
			if pid == after {
				pids = pids[i+1:]
				break
			}
		}
	}
	if len(pids) == 0 {
		return nil, next, nil
	}
	p := Prefix(workspace)
	pipe := g.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(pids))
	for i, pid := range pids {
		cmds[i] = pipe.HGet(ctx, p+"p:"+pid+":t", trait)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("searching trait %s: %w", trait, err)
	}
	var out []string
	for i, pid := range pids {
		if v, err := cmds[i].Result(); err == nil && TraitEquals(json.RawMessage(v), value) {
			out = append(out, pid)
		}
	}
	return out, next, nil
}

// TraitEquals reports whether a trait's JSON value is value as a query
// string spells it: a JSON string by its text ("pro"), a number by numeric
// equality ("42" matches 42 and 42.0), true/false/null by their literal.
// Objects and arrays never match.
func TraitEquals(raw json.RawMessage, value string) bool {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false
	}
	switch x := v.(type) {
	case string:
		return x == value
	case float64:
		f, err := strconv.ParseFloat(value, 64)
		return err == nil && f == x
	case bool:
		return strconv.FormatBool(x) == value
	case nil:
		return value == "null"
	}
	return false
}
