package clickstream

import (
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// shopEvent is what the behaviour tests read back from a generated event.
type shopEvent struct {
	Type        string `json:"type"`
	Event       string `json:"event"`
	AnonymousID string `json:"anonymousId"`
	UserID      string `json:"userId"`
	Traits      struct {
		Email string `json:"email"`
		Plan  string `json:"plan"`
	} `json:"traits"`
	Properties struct {
		OrderID string  `json:"order_id"`
		Revenue float64 `json:"revenue"`
	} `json:"properties"`
}

// generate runs g for n events and decodes them; quiet, when not nil,
// receives each device that went quiet, with the index of the event whose
// step retired it.
func generate(t *testing.T, g *Clickstream, n int, quiet func(anonID string, at int)) []shopEvent {
	t.Helper()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	out := make([]shopEvent, 0, n)
	var ids []string // the population's devices before each event
	for _, d := range g.devices {
		ids = append(ids, d.anonID)
	}
	var buf []byte
	for i := 0; i < n; i++ {
		buf, _ = g.Event(buf[:0], now.Add(time.Duration(i)*time.Millisecond), time.Time{})
		var ev shopEvent
		if err := json.Unmarshal(buf, &ev); err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, buf)
		}
		out = append(out, ev)
		for j := range g.devices {
			if id := g.devices[j].anonID; id != ids[j] {
				if quiet != nil {
					quiet(ids[j], i)
				}
				ids[j] = id
			}
		}
	}
	return out
}

// shops caches one long run a seed: the behaviour tests read the same
// streams, and decoding them is the slow part (under -race).
var shops sync.Map // seed → *shopRun

type shopRun struct {
	once   sync.Once
	events []shopEvent
	stats  Stats
}

func shop(t *testing.T, seed uint64) ([]shopEvent, Stats) {
	v, _ := shops.LoadOrStore(seed, &shopRun{})
	r := v.(*shopRun)
	r.once.Do(func() {
		g := New(seed, 200)
		r.events = generate(t, g, 20000, nil)
		r.stats = g.Stats()
	})
	return r.events, r.stats
}

var seeds = []uint64{1, 2, 3}

func TestSecondDeviceLoginReusesUserID(t *testing.T) {
	for _, seed := range seeds {
		events, st := shop(t, seed)
		type signUp struct{ anonID, email, plan string }
		first := map[string]signUp{} // userId → the identify that introduced it
		devices := map[string]map[string]bool{}
		logins := 0
		for i, ev := range events {
			if ev.Type != "identify" {
				continue
			}
			if ev.UserID == "" || ev.Traits.Email == "" {
				t.Fatalf("seed %d event %d: identify without userId or email: %+v", seed, i, ev)
			}
			if devices[ev.UserID] == nil {
				devices[ev.UserID] = map[string]bool{}
			}
			if devices[ev.UserID][ev.AnonymousID] {
				t.Fatalf("seed %d event %d: device %s identified twice as %s", seed, i, ev.AnonymousID, ev.UserID)
			}
			devices[ev.UserID][ev.AnonymousID] = true
			s, known := first[ev.UserID]
			if !known {
				first[ev.UserID] = signUp{ev.AnonymousID, ev.Traits.Email, ev.Traits.Plan}
				continue
			}
			// A login on another device: same person, same traits.
			logins++
			if s.anonID == ev.AnonymousID || s.email != ev.Traits.Email || s.plan != ev.Traits.Plan {
				t.Errorf("seed %d event %d: login %+v does not match sign-up %+v", seed, i, ev, s)
			}
			if len(devices[ev.UserID]) > 2 {
				t.Errorf("seed %d: %s on %d devices, want at most 2", seed, ev.UserID, len(devices[ev.UserID]))
			}
		}
		if logins == 0 || st.Logins != logins || st.SignUps != len(first) {
			t.Fatalf("seed %d: %d logins seen, stats %+v, %d sign-ups seen", seed, logins, st, len(first))
		}
		// Merges stay a few percent of the people who identify.
		if share := float64(logins) / float64(st.SignUps+logins); share < 0.01 || share > 0.10 {
			t.Errorf("seed %d: second-device logins are %.1f%% of identifies, want a few percent", seed, 100*share)
		}
		t.Logf("seed %d: %+v", seed, st)
	}
}

func TestRefundReferencesAnEarlierOrderOfTheSameUser(t *testing.T) {
	for _, seed := range seeds {
		events, st := shop(t, seed)
		type placed struct {
			userID  string
			revenue float64
			at      int
		}
		orders := map[string]placed{}
		refunded := map[string]bool{}
		for i, ev := range events {
			p := ev.Properties
			switch ev.Event {
			case "Order Completed":
				if _, dup := orders[p.OrderID]; dup || p.OrderID == "" {
					t.Fatalf("seed %d event %d: order id %q empty or reused", seed, i, p.OrderID)
				}
				orders[p.OrderID] = placed{ev.UserID, p.Revenue, i}
			case "Order Refunded":
				o, ok := orders[p.OrderID]
				switch {
				case !ok:
					t.Errorf("seed %d event %d: refund of unknown order %q", seed, i, p.OrderID)
				case refunded[p.OrderID]:
					t.Errorf("seed %d event %d: order %q refunded twice", seed, i, p.OrderID)
				case o.userID != ev.UserID || ev.UserID == "":
					t.Errorf("seed %d event %d: refund by %q of %q's order", seed, i, ev.UserID, o.userID)
				case o.revenue != p.Revenue || p.Revenue <= 0:
					t.Errorf("seed %d event %d: refund of %v for an order of %v", seed, i, p.Revenue, o.revenue)
				case i-o.at < 5:
					t.Errorf("seed %d event %d: refund %d events after its order, want some time after", seed, i, i-o.at)
				}
				refunded[p.OrderID] = true
			}
		}
		if len(refunded) == 0 || st.Refunds != len(refunded) || st.Orders != len(orders) {
			t.Fatalf("seed %d: %d refunds of %d orders seen, stats %+v", seed, len(refunded), len(orders), st)
		}
		if share := float64(st.Refunds) / float64(st.Orders); share < 0.01 || share > 0.10 {
			t.Errorf("seed %d: %.1f%% of orders refunded, want a few percent", seed, 100*share)
		}
	}
}

func TestQuietDevicesStopEmitting(t *testing.T) {
	g := New(5, 100)
	quietAt := map[string]int{}
	last := map[string]int{}
	events := generate(t, g, 15000, func(id string, at int) { quietAt[id] = at })
	for i, ev := range events {
		if at, gone := quietAt[ev.AnonymousID]; gone && i >= at {
			t.Fatalf("event %d from device %s, which went quiet at event %d", i, ev.AnonymousID, at)
		}
		last[ev.AnonymousID] = i
	}
	if len(quietAt) == 0 || g.Stats().Quiet != len(quietAt) {
		t.Fatalf("%d devices went quiet, stats %+v", len(quietAt), g.Stats())
	}
	for id := range quietAt {
		if _, sent := last[id]; !sent {
			t.Errorf("device %s went quiet without ever sending", id)
		}
	}
	if len(g.devices) != 100 {
		t.Errorf("population is %d devices, want 100: quiet devices are replaced", len(g.devices))
	}
	// New visitors replace quiet ones: more devices sent than the population.
	if len(last) <= 100 {
		t.Errorf("%d devices sent events, want more than the 100 of the population", len(last))
	}
}

func TestSameSeedSameShop(t *testing.T) {
	run := func(seed uint64) ([]byte, Stats) {
		g := New(seed, 30)
		now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		var all []byte
		for i := 0; i < 300; i++ {
			all, _ = g.Request(all, 20, now.Add(time.Duration(i)*time.Second))
		}
		return all, g.Stats()
	}
	a, sa := run(11)
	b, sb := run(11)
	if string(a) != string(b) || sa != sb {
		t.Errorf("seed 11 twice: different streams (stats %+v vs %+v)", sa, sb)
	}
	if sa.Logins == 0 || sa.Refunds == 0 || sa.Quiet == 0 {
		t.Errorf("6000 events without every behaviour: %+v", sa)
	}
}
