package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// shop generates a shop's clickstream as the stitcher sees it: many
// anonymous devices browsing, some people signing up (identify with user
// id, email and traits), signed-up people logging in on another device
// (which merges that device's anonymous profile into theirs), identified
// devices sending their user id along, a few trait updates, a few shared
// kiosks used by several people (blocked merges), and event times that
// arrive up to a few seconds out of order.
type shop struct {
	rng    *rand.Rand
	ws     string
	people []shopper
	seq    int
	at     time.Time
}

type shopper struct {
	user    string // "" until sign-up
	devices []string
	known   []bool // the device has sent the user id
}

func newShop(ws string, people int, seed int64) *shop {
	s := &shop{rng: rand.New(rand.NewSource(seed)), ws: ws, at: t0}
	for p := 0; p < people; p++ {
		n := 1 + s.rng.Intn(3)
		sh := shopper{known: make([]bool, n)}
		for d := 0; d < n; d++ {
			sh.devices = append(sh.devices, fmt.Sprintf("dev-%d-%d", p, d))
		}
		s.people = append(s.people, sh)
	}
	return s
}

var shopEvents = []string{"page", "page", "page", "page", "page", "track:Product Viewed", "track:Product Viewed", "track:Product Added", "track:Checkout Started", "track:Order Completed"}

func (s *shop) next() Update {
	s.seq++
	s.at = s.at.Add(100 * time.Millisecond)
	u := Update{Workspace: s.ws, MessageID: "m" + strconv.Itoa(s.seq), Time: s.at.Add(time.Duration(s.rng.Intn(5000)) * time.Millisecond),
		Counter: shopEvents[s.rng.Intn(len(shopEvents))]}
	pi := s.rng.Intn(len(s.people))
	p := &s.people[pi]
	d := s.rng.Intn(len(p.devices))
	anon := Identifier{"anonymous_id", p.devices[d]}
	r := s.rng.Float64()
	switch {
	case r < 0.01 && p.user != "": // a shared kiosk
		u.Identifiers = []Identifier{{"user_id", p.user}, {"anonymous_id", fmt.Sprintf("kiosk-%d", s.rng.Intn(20))}}
		u.Counter = "identify"
	case p.user == "" && r < 0.05: // sign-up
		p.user = "u" + strconv.Itoa(pi)
		p.known[d] = true
		email := p.user + "@shop.example"
		u.Identifiers = []Identifier{{"user_id", p.user}, {"email", email}, anon}
		u.Traits = map[string]json.RawMessage{"email": json.RawMessage(`"` + email + `"`), "name": json.RawMessage(`"Shopper ` + strconv.Itoa(pi) + `"`),
			"plan": json.RawMessage(`"free"`), "signup_source": json.RawMessage(`"web"`)}
		u.Counter = "identify"
	case p.user != "" && !p.known[d] && r < 0.25: // log in on another device: merge
		p.known[d] = true
		u.Identifiers = []Identifier{{"user_id", p.user}, anon}
		u.Traits = map[string]json.RawMessage{"last_login": json.RawMessage(strconv.FormatInt(s.at.UnixMilli(), 10))}
		u.Counter = "identify"
	case p.user != "" && p.known[d]:
		u.Identifiers = []Identifier{{"user_id", p.user}, anon}
		if r < 0.05 {
			u.Traits = map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`), "cart_value": json.RawMessage(strconv.Itoa(s.rng.Intn(500)))}
			u.Counter = "identify"
		}
	default:
		u.Identifiers = []Identifier{anon}
	}
	return u
}

func (s *shop) batch(n int) []Update {
	us := make([]Update, n)
	for i := range us {
		us[i] = s.next()
	}
	return us
}

// commandStats sums Redis's command counters (INFO commandstats): the
// commands scripts ran (everything but scripts themselves and
// administration) and the scripts. Other clients of the same server count
// too, so run it on a quiet server.
func commandStats(tb testing.TB, rdb redis.UniversalClient) (cmds, scripts int64) {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		switch {
		case name == "evalsha" || name == "eval":
			scripts += n
		case name == "info" || name == "hello" || name == "ping" || name == "client" || strings.HasPrefix(name, "script") ||
			strings.HasPrefix(name, "config") || name == "scan" || name == "unlink" || name == "dbsize":
		default:
			cmds += n
		}
	}
	return cmds, scripts
}

func benchEnv(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkApplyBatch measures events/s of the shop clickstream resolved
// in pipelined batches (one round trip per batch, as the stitcher does)
// against the real Redis, after a warm-up that creates most profiles, so
// the measured part is mostly returning visitors with some sign-ups,
// logins (merges) and kiosk visits (blocked merges). deploy/bench/stitcher.sh
// runs it beside redis-benchmark. Knobs: FP_BENCH_BATCH (events per
// pipeline, 500), FP_BENCH_PEOPLE (10000), FP_BENCH_WARMUP (batches, 40).
func BenchmarkApplyBatch(b *testing.B) {
	rdb := redisclient.New(testinfra.Redis(b))
	b.Cleanup(func() { rdb.Close() }) // after DropRedisKeys: cleanups run last first
	g := New(rdb, DefaultConfig())
	ctx := context.Background()
	size := benchEnv("FP_BENCH_BATCH", 500)
	s := newShop(testinfra.Unique(b), benchEnv("FP_BENCH_PEOPLE", 10000), 1)
	b.Cleanup(func() { testinfra.DropRedisKeys(b, rdb, Prefix(s.ws)+"*") })
	for i := 0; i < benchEnv("FP_BENCH_WARMUP", 40); i++ {
		if _, err := g.ApplyBatch(ctx, s.batch(size)); err != nil {
			b.Fatal(err)
		}
	}
	var merged, blocked, created int
	cmds0, scripts0 := commandStats(b, rdb)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		us := s.batch(size)
		b.StartTimer()
		res, err := g.ApplyBatch(ctx, us)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			merged += len(r.Merged)
			blocked += len(r.Blocked)
			if r.Created {
				created++
			}
		}
	}
	b.StopTimer()
	events := float64(b.N * size)
	cmds1, scripts1 := commandStats(b, rdb)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cmds1-cmds0)/events, "rediscmds/event")
	b.ReportMetric(float64(scripts1-scripts0)/events, "scripts/event")
	b.ReportMetric(float64(size), "events/roundtrip")
	b.ReportMetric(1000*float64(created)/events, "new/1k")
	b.ReportMetric(1000*float64(merged)/events, "merges/1k")
	b.ReportMetric(1000*float64(blocked)/events, "blocked/1k")
}
