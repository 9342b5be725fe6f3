package dedup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

func TestSeenAndRecordAgainstRedis(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ctx := context.Background()
	ws := testinfra.Unique(t)
	clock := time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC)
	s := New(rdb, 24*time.Hour)
	s.now = func() time.Time { return clock }

	a := ID{ws, "web", "m-1"}
	b := ID{ws, "web", "m-2"}
	otherSource := ID{ws, "app", "m-1"}
	seen, err := s.Seen(ctx, []ID{a, b, a})
	if err != nil {
		t.Fatal(err)
	}
	if seen[0] != "" || seen[1] != "" || seen[2] != InBatch {
		t.Fatalf("fresh ids: %q (the repeat inside the batch must count as seen)", seen)
	}
	if err := s.Record(ctx, []Entry{{a, "0:17"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, []Entry{{a, "2:99"}}); err != nil { // the first origin sticks
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		after time.Duration
		id    ID
		want  string
	}{
		{"same hour", 0, a, "0:17"},
		{"other message", 0, b, ""},
		{"same id, other source", 0, otherSource, ""},
		{"23 h later", 23 * time.Hour, a, "0:17"},
		{"24 h later: still inside", 24 * time.Hour, a, "0:17"},
		{"31 h later: outside the window and its last 6 h bucket", 31 * time.Hour, a, ""},
	}
	for _, tt := range tests {
		s.now = func() time.Time { return clock.Add(tt.after) }
		seen, err := s.Seen(ctx, []ID{tt.id})
		if err != nil {
			t.Fatal(err)
		}
		if seen[0] != tt.want {
			t.Errorf("%s: seen = %q, want %q", tt.name, seen[0], tt.want)
		}
	}
	// Both copies of a recorded id report the recorded origin, so a replay
	// can tell the copy that produced the output from the duplicate.
	s.now = func() time.Time { return clock }
	seen, err = s.Seen(ctx, []ID{a, a})
	if err != nil || seen[0] != "0:17" || seen[1] != "0:17" {
		t.Fatalf("repeated recorded id: %q, %v", seen, err)
	}
	ttl := rdb.TTL(ctx, bucketKey(ws, "web", clock.Unix()/s.width)).Val()
	if ttl < 24*time.Hour || ttl > 37*time.Hour {
		t.Errorf("bucket TTL = %v, want window + slack", ttl)
	}
}

func BenchmarkSeen500(b *testing.B) {
	rdb := redisclient.New(testinfra.Redis(b))
	defer rdb.Close()
	s := New(rdb, 24*time.Hour)
	ws := testinfra.Unique(b)
	ids := make([]ID, 500)
	for i := range ids {
		ids[i] = ID{ws, "web", fmt.Sprintf("m-%d", i)}
	}
	var entries []Entry
	for _, id := range ids[:250] {
		entries = append(entries, Entry{id, "0:1"})
	}
	_ = s.Record(context.Background(), entries)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Seen(context.Background(), ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "ids/s")
}
