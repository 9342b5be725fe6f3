package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

// The identities table says which profile every identifier belongs to now.
// The stitcher's profile changes are its only source (cdp.profiles.changes):
//
//   - identities_added of any change (CREATED, IDENTITIES_ADDED, MERGED,
//     SPLIT): (type, value) -> the change's profile_id;
//   - related_profile_ids of a MERGED change: ('$profile_id', absorbed id)
//     -> the survivor. events_current maps each event's processing-time
//     profile_id through these rows, so a merge never rewrites history;
//   - a merge moves everything the absorbed profile held (the stitcher
//     moves its identifiers in Redis without listing them again): every row
//     pointing at an absorbed profile is written again pointing at the
//     survivor, and so is every '$profile_id' row, which keeps chains of
//     merges (P1 into P2, later P2 into P3) one hop deep;
//   - targets are resolved through the '$profile_id' rows when a row is
//     written, so changes loaded out of order (they are keyed by profile and
//     come from different partitions) still leave every row pointing at a
//     live profile.
//
// A row's version is the loader's clock when it wrote it: every write is
// resolved as of that moment, so the newest row is the best one, and a
// replayed old change cannot win over a newer mapping because it is resolved
// forward before it is written.
//
// DELETED changes write nothing here: erasure removes a person's rows with
// ALTER TABLE ... DELETE in the privacy flow. Known limit: two loader
// instances loading the two halves of a chain of merges at the same moment
// can each miss the other's row, leaving one row a hop behind until the next
// merge touching it; events_current then shows the intermediate profile.
const profileIDType = "$profile_id"

type identityKey struct{ ws, typ, value string }

// identityLookup is what planIdentities needs to know of the table: the
// current target of some '$profile_id' rows, and the rows currently
// pointing at profiles absorbed by the batch's merges.
type identityLookup struct {
	forward  map[string]string // absorbed profile id -> survivor (one workspace)
	pointing []identityRow
}

// planIdentities is the pure core: the rows a batch's changes (one
// workspace, in Kafka order) write to identities, sorted, without version
// and time.
func planIdentities(ws string, changes []*profilev1.ProfileChange, look identityLookup) []identityRow {
	state := map[identityKey]string{}
	cause := map[identityKey]string{}
	changed := map[identityKey]bool{}
	forward := map[string]string{}
	for k, v := range look.forward {
		forward[k] = v
		state[identityKey{ws, profileIDType, k}] = v
	}
	for _, r := range look.pointing {
		k := identityKey{ws, r.Type, r.Value}
		state[k] = r.ProfileID
		cause[k] = r.ChangeID
	}
	resolve := func(p string) string {
		seen := map[string]bool{p: true}
		for {
			next, ok := forward[p]
			if !ok || seen[next] {
				return p
			}
			seen[next] = true
			p = next
		}
	}
	mergeCause := map[string]string{}
	for _, c := range changes {
		p := c.GetProfileId()
		if c.GetKind() == profilev1.ChangeKind_CHANGE_KIND_MERGED {
			for _, absorbed := range c.GetRelatedProfileIds() {
				if absorbed == "" || absorbed == p {
					continue
				}
				k := identityKey{ws, profileIDType, absorbed}
				forward[absorbed] = p
				state[k], cause[k], changed[k] = p, c.GetChangeId(), true
				mergeCause[absorbed] = c.GetChangeId()
				// A survivor that forwarded back to the absorbed profile
				// (a split brought it back, then this merge): the newer
				// merge wins, the survivor is live.
				if forwardsTo(forward, p, absorbed) {
					delete(forward, p)
					sk := identityKey{ws, profileIDType, p}
					state[sk], cause[sk], changed[sk] = p, c.GetChangeId(), true
				}
			}
		}
		if c.GetKind() == profilev1.ChangeKind_CHANGE_KIND_DELETED {
			continue
		}
		for _, id := range c.GetIdentitiesAdded() {
			if id.GetType() == "" || id.GetValue() == "" {
				continue
			}
			k := identityKey{ws, id.GetType(), id.GetValue()}
			state[k], cause[k], changed[k] = p, c.GetChangeId(), true
		}
	}
	var out []identityRow
	for k, target := range state {
		final := resolve(target)
		if !changed[k] && final == target {
			continue // already right in the table
		}
		c := cause[k]
		if final != target && mergeCause[target] != "" {
			c = mergeCause[target]
		}
		out = append(out, identityRow{WorkspaceID: ws, Type: k.typ, Value: k.value, ProfileID: final, ChangeID: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// forwardsTo reports whether following forward from p reaches target.
func forwardsTo(forward map[string]string, p, target string) bool {
	seen := map[string]bool{p: true}
	for {
		next, ok := forward[p]
		if !ok || seen[next] {
			return false
		}
		if next == target {
			return true
		}
		seen[next] = true
		p = next
	}
}

// identityInputs lists, for one workspace's changes, the profiles whose
// forward rows planIdentities needs and the profiles merges absorb.
func identityInputs(changes []*profilev1.ProfileChange) (targets, absorbed []string) {
	seenT, seenA := map[string]bool{}, map[string]bool{}
	for _, c := range changes {
		if !seenT[c.GetProfileId()] {
			seenT[c.GetProfileId()] = true
			targets = append(targets, c.GetProfileId())
		}
		if c.GetKind() != profilev1.ChangeKind_CHANGE_KIND_MERGED {
			continue
		}
		for _, a := range c.GetRelatedProfileIds() {
			if a != "" && !seenA[a] {
				seenA[a] = true
				absorbed = append(absorbed, a)
			}
		}
	}
	return targets, absorbed
}

// touchesIdentities reports whether a change writes identities rows.
func touchesIdentities(c *profilev1.ProfileChange) bool {
	return len(c.GetIdentitiesAdded()) > 0 || (c.GetKind() == profilev1.ChangeKind_CHANGE_KIND_MERGED && len(c.GetRelatedProfileIds()) > 0)
}

// identityStore reads the identities table for planIdentities. It reads
// with argMax(…, version) rather than FINAL: 18.16 may move a filter on a
// non-key column before FINAL collapses the rows (optimize_move_to_prewhere)
// and return a stale row.
type identityStore struct{ conn driver.Conn }

// maxForwardHops bounds the rounds of forward lookups (a chain only gets
// longer than one hop through the race described above).
const maxForwardHops = 4

func (s identityStore) lookup(ctx context.Context, ws string, changes []*profilev1.ProfileChange) (identityLookup, error) {
	targets, absorbed := identityInputs(changes)
	look := identityLookup{forward: map[string]string{}}
	asked := map[string]bool{}
	next := append(append([]string{}, targets...), absorbed...)
	for hop := 0; hop < maxForwardHops && len(next) > 0; hop++ {
		for _, p := range next {
			asked[p] = true
		}
		found, err := s.forwards(ctx, ws, next)
		if err != nil {
			return look, err
		}
		next = nil
		for from, to := range found {
			look.forward[from] = to
			if !asked[to] {
				next = append(next, to)
			}
		}
	}
	if len(absorbed) > 0 {
		var err error
		if look.pointing, err = s.pointingAt(ctx, ws, absorbed); err != nil {
			return look, err
		}
	}
	return look, nil
}

func groupSet(values []string) clickhouse.GroupSet {
	vs := make([]any, len(values))
	for i, v := range values {
		vs[i] = v
	}
	return clickhouse.GroupSet{Value: vs}
}

func (s identityStore) forwards(ctx context.Context, ws string, pids []string) (map[string]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT identifier_value, argMax(profile_id, version)
FROM identities
WHERE workspace_id = ? AND identifier_type = ? AND identifier_value IN ?
GROUP BY identifier_value`, ws, profileIDType, groupSet(pids))
	if err != nil {
		return nil, fmt.Errorf("reading merged profiles of %s: %w", ws, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, fmt.Errorf("reading merged profiles of %s: %w", ws, err)
		}
		if from != to {
			out[from] = to
		}
	}
	return out, rows.Err()
}

func (s identityStore) pointingAt(ctx context.Context, ws string, pids []string) ([]identityRow, error) {
	rows, err := s.conn.Query(ctx, `SELECT identifier_type, identifier_value, argMax(profile_id, version) AS pid, argMax(change_id, version)
FROM identities
WHERE workspace_id = ?
GROUP BY identifier_type, identifier_value
HAVING pid IN ?`, ws, groupSet(pids))
	if err != nil {
		return nil, fmt.Errorf("reading identifiers of merged profiles in %s: %w", ws, err)
	}
	defer rows.Close()
	var out []identityRow
	for rows.Next() {
		r := identityRow{WorkspaceID: ws}
		if err := rows.Scan(&r.Type, &r.Value, &r.ProfileID, &r.ChangeID); err != nil {
			return nil, fmt.Errorf("reading identifiers of merged profiles in %s: %w", ws, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// identityRows plans the identities rows of a batch's profile changes,
// reading what it needs of the table, and stamps them with version and time.
func (s identityStore) identityRows(ctx context.Context, changes []*profilev1.ProfileChange, clock *versionClock) ([]identityRow, error) {
	byWS := map[string][]*profilev1.ProfileChange{}
	var order []string
	for _, c := range changes {
		if !touchesIdentities(c) {
			continue
		}
		if _, ok := byWS[c.WorkspaceId]; !ok {
			order = append(order, c.WorkspaceId)
		}
		byWS[c.WorkspaceId] = append(byWS[c.WorkspaceId], c)
	}
	var out []identityRow
	for _, ws := range order {
		look, err := s.lookup(ctx, ws, byWS[ws])
		if err != nil {
			return nil, err
		}
		rows := planIdentities(ws, byWS[ws], look)
		now, v := clock.next()
		for i := range rows {
			rows[i].UpdatedAt, rows[i].Version = now, v
		}
		out = append(out, rows...)
	}
	return out, nil
}

// versionClock hands out strictly increasing versions (unix nanoseconds),
// so two batches written within one clock tick still order.
type versionClock struct {
	now  func() time.Time
	last uint64
}

func (c *versionClock) next() (time.Time, uint64) {
	t := c.now().UTC()
	v := uint64(t.UnixNano())
	if v <= c.last {
		v = c.last + 1
	}
	c.last = v
	return t.Truncate(time.Second), v
}
