package identity

import (
	"context"
	"fmt"
	"testing"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// BenchmarkProfiles reads 500 profiles (a segmenter batch's worth)
// against the real Redis: "full" is the one-round read, "segmenter" the
// one-round read without counters and lineage. (The two-round read it
// replaced took 5.8–6.0 ms on the 2-core box, against 5.0–5.2 and 3.7–4.2.)
func BenchmarkProfiles(b *testing.B) {
	rdb := redisclient.New(testinfra.Redis(b))
	defer rdb.Close()
	g := New(rdb, DefaultConfig())
	ctx := context.Background()
	ws := testinfra.Unique(b)
	var pids []string
	for i := 0; i < 500; i++ {
		r, err := g.Apply(ctx, ev{fmt.Sprintf("m%d", i), i, fmt.Sprintf("anonymous_id:a%d user_id:u%d", i, i), `{"plan":"pro","email":"x@y.z"}`, "page"}.update(ws))
		if err != nil {
			b.Fatal(err)
		}
		pids = append(pids, r.ProfileID)
	}
	for _, tc := range []struct {
		name string
		read func() (map[string]Profile, error)
	}{
		{"full", func() (map[string]Profile, error) { return g.Profiles(ctx, ws, pids) }},
		{"segmenter", func() (map[string]Profile, error) {
			return g.ProfilesWith(ctx, ws, pids, ReadOptions{SkipCounters: true, SkipMerged: true})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				got, err := tc.read()
				if err != nil || len(got) != len(pids) {
					b.Fatalf("read %d of %d: %v", len(got), len(pids), err)
				}
			}
		})
	}
}
