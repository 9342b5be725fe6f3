package segstate

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/testinfra"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

func newStore(t *testing.T) (*Store, redis.UniversalClient, string) {
	t.Helper()
	rdb := redisclient.New(testinfra.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	return New(rdb), rdb, testinfra.Unique(t)
}

func TestCommitIsVersionChecked(t *testing.T) {
	s, _, ws := newStore(t)
	ctx := context.Background()
	st := &segments.State{Watermark: 5}
	due := time.UnixMilli(1_800_000_000_000).UTC()
	err := s.Commit(ctx, ws, Write{ProfileID: "p1", Entries: map[string]*Entry{"vip": {Version: 2, In: true, Since: 7, State: st}},
		Watermarks: map[string]int64{"t/0": 41}, Timer: due,
		Pending: map[string][]*segmentv1.Membership{"t/0/41": {{MembershipId: "m1", ProfileId: "p1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, ws, []string{"p1", "never"})
	if err != nil {
		t.Fatal(err)
	}
	p := got["p1"]
	if p.Version != 1 || !p.Get("vip").In || p.Get("vip").State.Watermark != 5 || !p.Applied("t", 0, 41) || p.Applied("t", 0, 42) || p.Applied("t", 1, 1) {
		t.Fatalf("loaded %+v", p)
	}
	if got["never"].Version != 0 || len(got["never"].IDs()) != 0 {
		t.Fatalf("unknown profile loaded as %+v", got["never"])
	}
	if at, ok, _ := s.Timer(ctx, ws, "p1"); !ok || !at.Equal(due) {
		t.Fatalf("timer = %v %v, want %v", at, ok, due)
	}
	pend, err := s.Pending(ctx, ws, "p1", []string{"t/0/41", "t/0/40"})
	if err != nil || len(pend) != 1 || pend[0].MembershipId != "m1" {
		t.Fatalf("pending = %v, %v", pend, err)
	}
	if ms, _ := s.Memberships(ctx, ws, "p1"); len(ms) != 1 || ms[0].SegmentID != "vip" || ms[0].Version != 2 {
		t.Fatalf("memberships = %+v", ms)
	}

	// A writer holding the old version loses, and nothing of it is written.
	err = s.Commit(ctx, ws, Write{ProfileID: "p1", ExpectVersion: 0, Delete: []string{"vip"}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale write: %v, want ErrConflict", err)
	}
	// A merge writes two profiles or neither.
	err = s.Commit(ctx, ws, Write{ProfileID: "p1", ExpectVersion: 1}, Write{ProfileID: "p2", ExpectVersion: 3, Wipe: true, MergedInto: "p1"})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("merge with a stale loser: %v, want ErrConflict", err)
	}
	if err := s.Commit(ctx, ws, Write{ProfileID: "p1", ExpectVersion: 1, Timer: due}, Write{ProfileID: "p2", ExpectVersion: 0, Wipe: true, MergedInto: "p1"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Load(ctx, ws, []string{"p1", "p2"})
	if got["p1"].Version != 2 || !got["p1"].Get("vip").In || got["p2"].MergedInto != "p1" || got["p2"].Version != 1 {
		t.Fatalf("after merge: %+v %+v", got["p1"], got["p2"])
	}
	if _, ok, _ := s.Timer(ctx, ws, "p2"); ok {
		t.Fatal("a wiped profile kept its timer")
	}
	if err := s.Ack(ctx, ws, map[string][]string{"p1": {"t/0/41"}}); err != nil {
		t.Fatal(err)
	}
	if pend, _ := s.Pending(ctx, ws, "p1", []string{"t/0/41"}); len(pend) != 0 {
		t.Fatalf("acknowledged transitions still pending: %v", pend)
	}
}

func TestCommitManySurvivesScriptFlush(t *testing.T) {
	s, rdb, ws := newStore(t)
	ctx := context.Background()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.CommitMany(ctx, ws, [][]Write{{{ProfileID: "a"}}, {{ProfileID: "b", ExpectVersion: 9}}, {{ProfileID: "c"}}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res) != fmt.Sprint([]error{nil, ErrConflict, nil}) {
		t.Fatalf("CommitMany = %v", res)
	}
}

func TestClaimDueHandsEachTimerToOneClaimant(t *testing.T) {
	s, _, ws := newStore(t)
	ctx := context.Background()
	now := time.UnixMilli(1_800_000_000_000)
	for i := 0; i < 10; i++ {
		if err := s.Commit(ctx, ws, Write{ProfileID: fmt.Sprintf("p%d", i), Timer: now.Add(time.Duration(i-5) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := s.ClaimDue(ctx, ws, now, time.Minute, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 6 || a[0].ProfileID != "p0" || !a[0].At.Equal(now.Add(-5*time.Second)) {
		t.Fatalf("first claim = %+v", a)
	}
	if b, _ := s.ClaimDue(ctx, ws, now, time.Minute, 100); len(b) != 0 {
		t.Fatalf("a second claimant got %+v while the lease holds", b)
	}
	// The lease runs out: the timers are claimed again (the first claimant died).
	c, _ := s.ClaimDue(ctx, ws, now.Add(time.Minute+time.Second), time.Minute, 100)
	if len(c) != 10 {
		t.Fatalf("after the lease: %d claimed, want 10", len(c))
	}
	if at, ok, _ := s.NextDue(ctx, ws); !ok || !at.Equal(now.Add(2*time.Minute+time.Second).UTC()) {
		t.Fatalf("next due = %v %v", at, ok)
	}
}

func TestBackfillLease(t *testing.T) {
	s, _, ws := newStore(t)
	ctx := context.Background()
	key := BackfillKey("germans", 3)
	if ok, err := s.AcquireBackfill(ctx, ws, key, "a", time.Minute); err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if ok, _ := s.AcquireBackfill(ctx, ws, key, "b", time.Minute); ok {
		t.Fatal("b took a held lease")
	}
	if err := s.SaveBackfill(ctx, ws, key, "b", 99, false, time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("b saved progress without the lease: %v", err)
	}
	if err := s.SaveBackfill(ctx, ws, key, "a", 42, false, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Backfill(ctx, ws, key); st.Done || st.Cursor != 42 {
		t.Fatalf("progress = %+v", st)
	}
	if err := s.SaveBackfill(ctx, ws, key, "a", 0, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Backfill(ctx, ws, key); !st.Done {
		t.Fatalf("progress = %+v, want done", st)
	}
	if ok, _ := s.AcquireBackfill(ctx, ws, key, "b", time.Minute); !ok {
		t.Fatal("the lease was not released when done")
	}
}

// A write larger than Lua unpacks at once (about 8,000 values) still goes
// through whole: a workspace of thousands of segments, or thousands of one
// profile's inputs in one batch, must not stall its partition.
func TestCommitOfManyFields(t *testing.T) {
	s, _, ws := newStore(t)
	ctx := context.Background()
	const n = 6000
	entries, due := map[string]*Entry{}, map[string]int64{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("seg%05d", i)
		entries[id] = &Entry{Version: 3, In: true, Since: 5, State: &segments.State{Watermark: 1}}
		due[id] = 1_800_000_000_000
	}
	pending := map[string][]*segmentv1.Membership{}
	for i := 0; i < n; i++ {
		pending[fmt.Sprintf("t/0/%d", i)] = []*segmentv1.Membership{{MembershipId: fmt.Sprint(i)}}
	}
	if err := s.Commit(ctx, ws, Write{ProfileID: "p", Entries: entries, Due: due, Pending: pending, Watermarks: map[string]int64{"t/0": n}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, ws, []string{"p"})
	if err != nil {
		t.Fatal(err)
	}
	p := got["p"]
	if p.Version != 1 || len(p.IDs()) != n || p.Due["seg05999"] != 1_800_000_000_000 {
		t.Fatalf("version %d, %d entries, due %d; want 1, %d, set", p.Version, len(p.IDs()), p.Due["seg05999"], n)
	}
	if v, ok := p.EntryVersion("seg00042"); !ok || v != 3 {
		t.Errorf("EntryVersion = %d, %v; want 3 without decoding", v, ok)
	}
	ms, err := s.Pending(ctx, ws, "p", []string{"t/0/0", "t/0/5999"})
	if err != nil || len(ms) != 2 {
		t.Fatalf("pending: %d, %v; want both", len(ms), err)
	}
	// And forgetting them all again.
	var del []string
	for id := range entries {
		del = append(del, id)
	}
	if err := s.Commit(ctx, ws, Write{ProfileID: "p", ExpectVersion: 1, Delete: del}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.Load(ctx, ws, []string{"p"}); len(got["p"].IDs()) != 0 {
		t.Errorf("%d entries left after deleting all", len(got["p"].IDs()))
	}
}
