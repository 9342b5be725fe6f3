package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// ev is a compact scenario event.
type ev struct {
	msg    string
	at     int // minutes after t0
	ids    string
	traits string // JSON object
	count  string
}

func (e ev) update(ws string) Update {
	u := Update{Workspace: ws, MessageID: e.msg, Time: t0.Add(time.Duration(e.at) * time.Minute), Counter: e.count}
	for _, s := range strings.Fields(e.ids) {
		t, v, _ := strings.Cut(s, ":")
		u.Identifiers = append(u.Identifiers, Identifier{t, v})
	}
	if e.traits != "" {
		_ = json.Unmarshal([]byte(e.traits), &u.Traits)
	}
	return u
}

// components is the graph as sets of identifiers that share a profile,
// read from the workspace's profile index; every identifier must resolve
// to the profile that lists it.
func components(t *testing.T, rdb redis.UniversalClient, ws string) []string {
	t.Helper()
	ctx := context.Background()
	p := Prefix(ws)
	var out []string
	for _, pid := range rdb.SMembers(ctx, p+"profiles").Val() {
		ids := rdb.SMembers(ctx, p+"p:"+pid+":ids").Val()
		for _, id := range ids {
			if owner := rdb.Get(ctx, p+"id:"+id).Val(); owner != pid {
				t.Errorf("%s is listed on %s but resolves to %q", id, pid, owner)
			}
		}
		if len(ids) > 0 {
			sort.Strings(ids)
			out = append(out, strings.Join(ids, " "))
		}
	}
	sort.Strings(out)
	return out
}

// snapshot is every profile of the workspace as identities, traits,
// counters and first/last seen, sorted: what must not depend on which
// instance resolved which event when.
func snapshot(t *testing.T, g *Graph, rdb redis.UniversalClient, ws string) []string {
	t.Helper()
	var out []string
	for _, c := range components(t, rdb, ws) {
		first, _, _ := strings.Cut(c, " ")
		ty, v, _ := strings.Cut(first, ":")
		p, err := g.Lookup(context.Background(), ws, Identifier{ty, v})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, view(p))
	}
	sort.Strings(out)
	return out
}

func graph(t *testing.T) (*Graph, redis.UniversalClient) {
	rdb := redisclient.New(testinfra.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	return New(rdb, DefaultConfig()), rdb
}

func TestScenarios(t *testing.T) {
	g, rdb := graph(t)
	tests := []struct {
		name   string
		events []ev
		want   []string // components
		check  func(t *testing.T, ws string)
	}{
		{"anonymous browsing then sign-up", []ev{
			{"m1", 0, "anonymous_id:a1", "", "page"},
			{"m2", 1, "anonymous_id:a1", "", "page"},
			{"m3", 2, "user_id:u1 email:ann@x.io anonymous_id:a1", `{"email":"ann@x.io","plan":"free"}`, "identify"},
		}, []string{"anonymous_id:a1 email:ann@x.io user_id:u1"}, func(t *testing.T, ws string) {
			p, err := g.Lookup(context.Background(), ws, Identifier{"email", "ann@x.io"})
			if err != nil || p.Counters["page"] != 2 || p.Counters["identify"] != 1 || string(p.Traits["plan"]) != `"free"` {
				t.Errorf("profile = %+v, %v", p, err)
			}
			if !p.FirstSeen.Equal(t0) || !p.LastSeen.Equal(t0.Add(2*time.Minute)) {
				t.Errorf("first/last seen = %v / %v", p.FirstSeen, p.LastSeen)
			}
		}},
		{"one user on two devices", []ev{
			{"m1", 0, "user_id:u1 anonymous_id:a1", "", "identify"},
			{"m2", 1, "anonymous_id:a2", "", "page"},
			{"m3", 2, "user_id:u1 anonymous_id:a2", "", "identify"},
		}, []string{"anonymous_id:a1 anonymous_id:a2 user_id:u1"}, nil},
		{"alias chain", []ev{
			{"m1", 0, "anonymous_id:a1", "", "page"},
			{"m2", 1, "user_id:u1 previous_id:a1", "", "alias"},
			{"m3", 2, "anonymous_id:a2", "", "page"},
			{"m4", 3, "user_id:u1 previous_id:a2", "", "alias"},
		}, []string{"anonymous_id:a1 anonymous_id:a2 user_id:u1"}, nil},
		{"shared device with two users: no merge", []ev{
			{"m1", 0, "user_id:u1 anonymous_id:kiosk", "", "identify"},
			{"m2", 1, "user_id:u2 anonymous_id:kiosk", "", "identify"},
		}, []string{"anonymous_id:kiosk user_id:u1", "user_id:u2"}, nil},
		{"email used by two user ids", []ev{
			{"m1", 0, "user_id:u1 email:shared@x.io", "", "identify"},
			{"m2", 1, "user_id:u2 email:shared@x.io", "", "identify"},
		}, []string{"email:shared@x.io user_id:u1", "user_id:u2"}, nil},
		{"out-of-order and duplicated events", []ev{
			{"m1", 10, "user_id:u1", `{"plan":"pro"}`, "identify"},
			{"m0", 5, "user_id:u1", `{"plan":"free","name":"Ann"}`, "identify"}, // late: plan must stay pro
			{"m1", 10, "user_id:u1", `{"plan":"pro"}`, "identify"},              // redelivered: no-op
		}, []string{"user_id:u1"}, func(t *testing.T, ws string) {
			p, _ := g.Lookup(context.Background(), ws, Identifier{"user_id", "u1"})
			if string(p.Traits["plan"]) != `"pro"` || string(p.Traits["name"]) != `"Ann"` || p.Counters["identify"] != 2 || p.Version != 2 {
				t.Errorf("late or duplicate event changed the profile: %+v", p)
			}
			if !p.FirstSeen.Equal(t0.Add(5 * time.Minute)) {
				t.Errorf("first seen = %v, want the late event's time", p.FirstSeen)
			}
		}},
		{"merge of two profiles with traits and counters", []ev{
			{"m1", 0, "anonymous_id:a1", `{"name":"Old Name","city":"Berlin"}`, "page"},
			{"m2", 1, "anonymous_id:a1", "", "page"},
			{"m3", 2, "user_id:u1", `{"name":"New Name","plan":"pro"}`, "track:Order Completed"},
			{"m4", 3, "user_id:u1 anonymous_id:a1", "", "identify"},
		}, []string{"anonymous_id:a1 user_id:u1"}, func(t *testing.T, ws string) {
			p, _ := g.Lookup(context.Background(), ws, Identifier{"anonymous_id", "a1"})
			if string(p.Traits["name"]) != `"New Name"` || string(p.Traits["city"]) != `"Berlin"` || string(p.Traits["plan"]) != `"pro"` {
				t.Errorf("traits after merge: %v", p.Traits)
			}
			if p.Counters["page"] != 2 || p.Counters["track:Order Completed"] != 1 || p.Counters["identify"] != 1 || len(p.Merged) != 1 {
				t.Errorf("counters/lineage after merge: %v %v", p.Counters, p.Merged)
			}
			// The merged-away id still resolves to the survivor.
			old, err := g.Profile(context.Background(), ws, p.Merged[0])
			if err != nil || old.ID != p.ID {
				t.Errorf("old profile id resolves to %q (%v), want %q", old.ID, err, p.ID)
			}
		}},
		{"limit of five emails", []ev{
			{"m1", 0, "user_id:u1 email:1@x.io email:2@x.io email:3@x.io", "", "identify"},
			{"m2", 1, "user_id:u1 email:4@x.io email:5@x.io email:6@x.io", "", "identify"},
		}, []string{"email:1@x.io email:2@x.io email:3@x.io email:4@x.io email:5@x.io user_id:u1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := testinfra.Unique(t)
			for _, e := range tt.events {
				if _, err := g.Apply(context.Background(), e.update(ws)); err != nil {
					t.Fatal(err)
				}
			}
			if got := components(t, rdb, ws); strings.Join(got, " | ") != strings.Join(tt.want, " | ") {
				t.Fatalf("graph = %q\nwant    %q", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, ws)
			}
		})
	}
}

func TestResultReportsChanges(t *testing.T) {
	g, _ := graph(t)
	ws := testinfra.Unique(t)
	ctx := context.Background()
	r1, err := g.Apply(ctx, ev{"m1", 0, "anonymous_id:a1", `{"plan":"free"}`, "page"}.update(ws))
	if err != nil || !r1.Created || len(r1.Added) != 1 || len(r1.TraitChanges) != 1 || len(r1.TraitChanges[0].Old) != 0 {
		t.Fatalf("first event: %+v %v", r1, err)
	}
	r2, _ := g.Apply(ctx, ev{"m2", 1, "user_id:u1", "", "identify"}.update(ws))
	r3, err := g.Apply(ctx, ev{"m3", 2, "user_id:u1 anonymous_id:a1", `{"plan":"pro"}`, "identify"}.update(ws))
	if err != nil || r3.Created || len(r3.Merged) != 1 || r3.ProfileID != r2.ProfileID || r3.Merged[0] != r1.ProfileID {
		t.Fatalf("merge: %+v %v (user's profile must survive)", r3, err)
	}
	if len(r3.TraitChanges) != 1 || string(r3.TraitChanges[0].Old) != `"free"` || string(r3.TraitChanges[0].New) != `"pro"` {
		t.Fatalf("trait change after merge: %+v", r3.TraitChanges)
	}
	again, _ := g.Apply(ctx, ev{"m3", 2, "user_id:u1 anonymous_id:a1", `{"plan":"pro"}`, "identify"}.update(ws))
	if again.Version != r3.Version || again.ProfileID != r3.ProfileID {
		t.Fatalf("redelivery gave another result: %+v vs %+v", again, r3)
	}
	shared, _ := g.Apply(ctx, ev{"m4", 3, "user_id:u2 anonymous_id:a1", "", "identify"}.update(ws))
	if len(shared.Blocked) != 1 || shared.ProfileID == r3.ProfileID {
		t.Fatalf("shared device: %+v", shared)
	}
	// A page view of a known user changes only times and counters: its
	// result (and marker) is the short form, and a redelivery answers it
	// again.
	plain, err := g.Apply(ctx, ev{"m5", 4, "user_id:u1", "", "page"}.update(ws))
	if err != nil || plain.ProfileID != r3.ProfileID || plain.Version != r3.Version+1 || !plain.Unchanged() {
		t.Fatalf("page view: %+v %v", plain, err)
	}
	if m, _ := g.rdb.Get(ctx, Prefix(ws)+"m:m5").Result(); m != "="+plain.ProfileID+"|"+strconv.FormatInt(plain.Version, 10) {
		t.Fatalf("marker of a page view %q, want the short form", m)
	}
	if again, err := g.Apply(ctx, ev{"m5", 4, "user_id:u1", "", "page"}.update(ws)); err != nil || !reflect.DeepEqual(again, plain) {
		t.Fatalf("redelivered page view: %+v %v, want %+v", again, err, plain)
	}
}

func TestDecodeResult(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Result
		bad  bool
	}{
		{in: "=p_1|42", want: Result{ProfileID: "p_1", Version: 42}},
		{in: `{"created":false,"added":{},"merged":{},"blocked":{},"traits":{},"dropped":{},"profile":"p_1","version":42}`, want: Result{ProfileID: "p_1", Version: 42}},
		{in: `{"created":true,"added":["anonymous_id:a"],"merged":{},"blocked":{},"traits":{},"dropped":{},"profile":"p_2","version":1}`,
			want: Result{ProfileID: "p_2", Version: 1, Created: true, Added: []Identifier{{"anonymous_id", "a"}}}},
		{in: "=p_1", bad: true},
		{in: "=|3", bad: true},
		{in: "=p_1|x", bad: true},
		{in: "{", bad: true},
	} {
		got, err := decodeResult(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q decoded as %+v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestScriptReloadedAfterFlush(t *testing.T) {
	g, rdb := graph(t)
	ws := testinfra.Unique(t)
	if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply(context.Background(), ev{"m1", 0, "user_id:u1", "", "identify"}.update(ws)); err != nil {
		t.Fatalf("after SCRIPT FLUSH (as after a Redis restart): %v", err)
	}
}

// stream is a shop's worth of events over many people and devices.
func stream(people int) [][]ev {
	var byDevice [][]ev
	for p := 0; p < people; p++ {
		u := fmt.Sprintf("user_id:u%d", p)
		d1, d2 := fmt.Sprintf("anonymous_id:p%d-phone", p), fmt.Sprintf("anonymous_id:p%d-laptop", p)
		m := func(s string) string { return fmt.Sprintf("p%d-%s", p, s) }
		byDevice = append(byDevice,
			[]ev{{m("1"), 0, d1, "", "page"}, {m("2"), 1, u + " " + d1 + fmt.Sprintf(" email:p%d@x.io", p), `{"plan":"free"}`, "identify"}, {m("3"), 5, d1, "", "track:Product Viewed"}},
			[]ev{{m("4"), 2, d2, "", "page"}, {m("5"), 3, u + " " + d2, `{"plan":"pro"}`, "identify"}, {m("6"), 4, u, "", "track:Order Completed"}},
		)
		if p%5 == 0 { // a shared kiosk seen with two people
			byDevice = append(byDevice, []ev{{m("7"), 6, fmt.Sprintf("user_id:u%d anonymous_id:kiosk-%d", p, p), "", "identify"}, {m("8"), 7, fmt.Sprintf("user_id:u%d anonymous_id:kiosk-%d", p+1, p), "", "identify"}})
		}
	}
	return byDevice
}

// TestConcurrentInstancesConverge splits one stream across three
// "instances" (own clients, own goroutines) that each own some devices, as
// Kafka partitions would, and apply them in random interleavings as
// pipelined batches of random size, some delivered twice; the final
// profiles (identities, traits, counters, first/last seen) must equal a
// single instance's. Repeated with different seeds.
func TestConcurrentInstancesConverge(t *testing.T) {
	rc := testinfra.Redis(t)
	single := redisclient.New(rc)
	defer single.Close()
	devices := stream(30)
	wsSingle := testinfra.Unique(t) + "-single"
	g := New(single, DefaultConfig())
	for _, d := range devices {
		for _, e := range d {
			if _, err := g.Apply(context.Background(), e.update(wsSingle)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := snapshot(t, g, single, wsSingle)

	for round := 0; round < 40; round++ {
		ws := fmt.Sprintf("%s-r%d", testinfra.Unique(t), round)
		rng := rand.New(rand.NewSource(int64(round)))
		var wg sync.WaitGroup
		for inst := 0; inst < 3; inst++ {
			var mine [][]ev
			for i, d := range devices {
				if i%3 == inst {
					mine = append(mine, d)
				}
			}
			seed := rng.Int63()
			wg.Add(1)
			go func() {
				defer wg.Done()
				rdb := redisclient.New(rc)
				defer rdb.Close()
				g := New(rdb, DefaultConfig())
				r := rand.New(rand.NewSource(seed))
				pos := make([]int, len(mine))
				for {
					// pick a random device with events left; keep its order
					var open []int
					for i := range mine {
						if pos[i] < len(mine[i]) {
							open = append(open, i)
						}
					}
					if len(open) == 0 {
						return
					}
					// A batch of 1-6 events, each from a random device,
					// pipelined as the stitcher does.
					var batch []Update
					for k := 1 + r.Intn(6); k > 0 && len(open) > 0; k-- {
						j := r.Intn(len(open))
						i := open[j]
						batch = append(batch, mine[i][pos[i]].update(ws))
						if pos[i]++; pos[i] == len(mine[i]) {
							open = append(open[:j], open[j+1:]...)
						}
					}
					// Now and then a batch is delivered twice (a
					// consumer restarted before committing).
					times := 1
					if r.Intn(10) == 0 {
						times = 2
					}
					for ; times > 0; times-- {
						if _, err := g.ApplyBatch(context.Background(), batch); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if got := snapshot(t, g, single, ws); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("round %d: three instances built a different graph than one:\n%s\nwant\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestBatchEqualsSingle applies the concurrency stream as pipelined batches
// (after flushing the script cache, so NOSCRIPT is handled) and compares the
// graph with one built by single calls.
func TestBatchEqualsSingle(t *testing.T) {
	g, rdb := graph(t)
	ctx := context.Background()
	var all []ev
	for _, d := range stream(20) {
		all = append(all, d...)
	}
	wsSingle, wsBatch := testinfra.Unique(t)+"-1", testinfra.Unique(t)+"-b"
	for _, e := range all {
		if _, err := g.Apply(ctx, e.update(wsSingle)); err != nil {
			t.Fatal(err)
		}
	}
	_ = rdb.ScriptFlush(ctx).Err()
	for start := 0; start < len(all); start += 16 {
		var us []Update
		for _, e := range all[start:min(start+16, len(all))] {
			us = append(us, e.update(wsBatch))
		}
		res, err := g.ApplyBatch(ctx, us)
		if err != nil || len(res) != len(us) || res[0].ProfileID == "" {
			t.Fatalf("batch: %v %v", res, err)
		}
	}
	if a, b := components(t, rdb, wsSingle), components(t, rdb, wsBatch); strings.Join(a, "|") != strings.Join(b, "|") {
		t.Fatalf("batched graph differs:\n%v\n%v", b, a)
	}
}
