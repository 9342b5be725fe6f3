package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/testinfra"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// Each scenario runs through the real broker and Redis, with the
// service's clock under the test's control where time must pass.

func TestTraitCondition(t *testing.T) {
	h := newHarness(t, `
- id: pro-cn-de
  version: 1
  name: Pro in CN or DE
  condition: 'traits.plan == "pro" && traits.country in ["CN","DE"]'
`)
	h.start()
	ann := h.identify("ann", map[string]any{"plan": "pro", "country": "DE"})
	bob := h.identify("bob", map[string]any{"plan": "pro", "country": "FR"})
	h.waitFor(ann + " pro-cn-de enter")
	h.identify("bob", map[string]any{"country": "CN"})
	h.identify("ann", map[string]any{"plan": "free"})
	h.waitFor(ann+" pro-cn-de enter", bob+" pro-cn-de enter", ann+" pro-cn-de exit")
	if got := h.membershipsOf(bob); fmt.Sprint(got) != "[pro-cn-de]" {
		t.Fatalf("bob's segments in Redis = %v", got)
	}
	if got := h.membershipsOf(ann); len(got) != 0 {
		t.Fatalf("ann's segments in Redis = %v", got)
	}
}

func TestWindowedCountAndSum(t *testing.T) {
	h := newHarness(t, `
- id: audio-fans
  version: 1
  name: Audio fans
  condition: views >= 3
  aggregates: {views: {count: {event: "Product Viewed", where: 'properties.category == "audio"', within: 7d}}}
- id: big-spenders
  version: 1
  name: Big spenders
  condition: revenue >= 500.0
  aggregates: {revenue: {sum: {event: "Order Completed", property: revenue, within: 90d}}}
`)
	h.start()
	for i, cat := range []string{"audio", "video", "audio"} {
		h.track("p1", "Product Viewed", map[string]any{"category": cat, "n": i})
		h.clock.Advance(time.Hour)
	}
	h.track("p2", "Order Completed", map[string]any{"revenue": 300})
	h.track("p2", "Order Completed", map[string]any{"revenue": "lots"}) // not a number: not summed
	time.Sleep(300 * time.Millisecond)
	h.waitFor() // two audio views, 300 spent: nobody is in yet
	h.track("p1", "Product Viewed", map[string]any{"category": "audio"})
	h.track("p2", "Order Completed", map[string]any{"revenue": 250.5})
	h.waitFor("p1 audio-fans enter", "p2 big-spenders enter")

	// A week after the first view it leaves the window, and p1 exits then,
	// with no new event.
	h.clock.Advance(7*24*time.Hour - 3*time.Hour)
	time.Sleep(200 * time.Millisecond)
	h.waitFor("p1 audio-fans enter", "p2 big-spenders enter")
	h.clock.Advance(2 * time.Hour)
	h.waitFor("p1 audio-fans enter", "p2 big-spenders enter", "p1 audio-fans exit")
}

func TestAbandonedCartFiresWhenTheHourPasses(t *testing.T) {
	h := newHarness(t, `
- id: abandoned-cart
  version: 1
  name: Abandoned cart
  condition: abandoned
  aggregates: {abandoned: {absence: {after: "Cart Added", missing: "Order Completed", within: 1h}}}
`)
	stop := h.start()
	h.track("ann", "Cart Added", nil)
	h.track("bob", "Cart Added", nil)
	h.clock.Advance(30 * time.Minute)
	h.track("bob", "Order Completed", map[string]any{"revenue": 20})
	time.Sleep(300 * time.Millisecond)
	h.waitFor()

	// The timer is durable: a restart in between does not lose it.
	stop()
	h.clock.Advance(30*time.Minute + time.Millisecond)
	h.start()
	h.waitFor("ann abandoned-cart enter")
	got := h.memberships()
	if want := t0.Add(time.Hour); !got[0].OccurredAt.AsTime().Equal(want) {
		t.Fatalf("abandoned cart occurred at %v, want when the hour ran out (%v)", got[0].OccurredAt.AsTime(), want)
	}
	// Buying later ends it.
	h.clock.Advance(time.Hour)
	h.track("ann", "Order Completed", map[string]any{"revenue": 20})
	h.waitFor("ann abandoned-cart enter", "ann abandoned-cart exit")
}

func TestDormantAfterThirtyQuietDays(t *testing.T) {
	h := newHarness(t, `
- id: dormant
  version: 1
  name: Dormant
  condition: quiet
  aggregates: {quiet: {inactive: {within: 30d}}}
`)
	h.start()
	h.track("ann", "Page Viewed", nil)
	h.clock.Advance(29 * 24 * time.Hour)
	time.Sleep(200 * time.Millisecond)
	h.waitFor()
	h.clock.Advance(24*time.Hour + time.Millisecond)
	h.waitFor("ann dormant enter")
	h.track("ann", "Page Viewed", nil)
	h.waitFor("ann dormant enter", "ann dormant exit")
}

func TestLifecycleTemplates(t *testing.T) {
	var defs strings.Builder
	for _, name := range segments.TemplateNames() {
		defs.WriteString("- " + indent(string(segments.Templates()[name]), "  ")[2:])
	}
	h := newHarness(t, defs.String())
	h.start()
	ann := h.identify("ann", map[string]any{"name": "Ann"})
	h.send(ann, eventv1.EventType_EVENT_TYPE_TRACK, "Order Completed", map[string]any{"revenue": 10})
	h.waitFor(ann+" lifecycle-registered enter", ann+" lifecycle-active enter", ann+" lifecycle-first-purchase enter")
	h.clock.Advance(24 * time.Hour)
	h.send(ann, eventv1.EventType_EVENT_TYPE_TRACK, "Order Completed", map[string]any{"revenue": 10})
	h.waitFor(ann+" lifecycle-registered enter", ann+" lifecycle-active enter", ann+" lifecycle-first-purchase enter",
		ann+" lifecycle-first-purchase exit")
	h.clock.Advance(14*24*time.Hour + time.Millisecond)
	h.waitFor(ann+" lifecycle-registered enter", ann+" lifecycle-active enter", ann+" lifecycle-first-purchase enter",
		ann+" lifecycle-first-purchase exit", ann+" lifecycle-churning enter")
	h.clock.Advance(16 * 24 * time.Hour)
	h.waitFor(ann+" lifecycle-registered enter", ann+" lifecycle-active enter", ann+" lifecycle-first-purchase enter",
		ann+" lifecycle-first-purchase exit", ann+" lifecycle-churning enter",
		ann+" lifecycle-churning exit", ann+" lifecycle-dormant enter")
	// "Active" counts in day buckets and never under-counts: the last
	// order's day leaves its window at the end of that day, 30 days on.
	h.clock.Advance(15 * time.Hour)
	h.waitFor(ann+" lifecycle-registered enter", ann+" lifecycle-active enter", ann+" lifecycle-first-purchase enter",
		ann+" lifecycle-first-purchase exit", ann+" lifecycle-churning enter",
		ann+" lifecycle-churning exit", ann+" lifecycle-dormant enter", ann+" lifecycle-active exit")
}

// TestMergeCombinesAggregates: two profiles with two audio views each are
// not fans; merged, the survivor has four and enters, and the loser, in the
// segment it was in before, exits.
func TestMergeCombinesAggregates(t *testing.T) {
	h := newHarness(t, `
- id: audio-fans
  version: 1
  name: Audio fans
  condition: views >= 3
  aggregates: {views: {count: {event: "Product Viewed", where: 'properties.category == "audio"', within: 7d}}}
- id: viewers
  version: 1
  name: Viewers
  condition: views >= 1
  aggregates: {views: {count: {event: "Product Viewed"}}}
`)
	h.start()
	for _, p := range []string{"phone", "laptop", "phone", "laptop"} {
		h.track(p, "Product Viewed", map[string]any{"category": "audio"})
	}
	h.waitFor("phone viewers enter", "laptop viewers enter")
	h.change("phone", profilev1.ChangeKind_CHANGE_KIND_MERGED, "login", "laptop")
	h.waitFor("phone viewers enter", "laptop viewers enter", "laptop viewers exit", "phone audio-fans enter")
	if got := h.membershipsOf("laptop"); len(got) != 0 {
		t.Fatalf("merged-away profile still in %v", got)
	}
	// The survivor carries the loser's views: one more is counted on top of four.
	h.clock.Advance(7*24*time.Hour + time.Hour)
	h.waitFor("phone viewers enter", "laptop viewers enter", "laptop viewers exit", "phone audio-fans enter", "phone audio-fans exit")
}

// TestRedeliveryIsANoOp replays every input from the start in a new
// consumer group (offsets lost): state and transitions do not change.
func TestRedeliveryIsANoOp(t *testing.T) {
	h := newHarness(t, `
- id: buyers
  version: 1
  name: Buyers
  condition: orders >= 2
  aggregates: {orders: {count: {event: "Order Completed"}}}
`)
	stop := h.start()
	for i := 0; i < 50; i++ {
		h.track(fmt.Sprintf("p%d", i%10), "Order Completed", nil)
	}
	var want []string
	for i := 0; i < 10; i++ {
		want = append(want, fmt.Sprintf("p%d buyers enter", i))
	}
	h.waitFor(want...)
	testinfra.WaitCaughtUp(t, h.kc, h.group, h.names.Resolved, 30*time.Second)
	stop()
	before, _ := h.store.Load(context.Background(), h.ws, []string{"p3"})
	h.group += "-replay"
	stop = h.start()
	testinfra.WaitCaughtUp(t, h.kc, h.group, h.names.Resolved, 30*time.Second)
	stop()
	h.waitFor(want...)
	after, _ := h.store.Load(context.Background(), h.ws, []string{"p3"})
	b, a := before["p3"].Get("buyers"), after["p3"].Get("buyers")
	if fmt.Sprint(b.State.Aggs["orders"].Total) != "5" || a.State.Aggs["orders"].Total != b.State.Aggs["orders"].Total {
		t.Fatalf("orders of p3: before replay %v, after %v; want 5 both", b.State.Aggs["orders"].Total, a.State.Aggs["orders"].Total)
	}
}

// TestNewSegmentIsBackfilled: a segment added while traffic flows gets the
// people who already qualify, from their current state.
func TestNewSegmentIsBackfilled(t *testing.T) {
	h := newHarness(t, `
- id: pro
  version: 1
  name: Pro
  condition: 'traits.plan == "pro"'
`)
	h.start()
	ann := h.identify("ann", map[string]any{"plan": "pro", "country": "DE"})
	bob := h.identify("bob", map[string]any{"plan": "free", "country": "DE"})
	h.waitFor(ann + " pro enter")
	h.writeConfig(`
- id: pro
  version: 1
  name: Pro
  condition: 'traits.plan == "pro"'
- id: germans
  version: 1
  name: Germans
  condition: 'traits.country == "DE"'
`)
	h.waitFor(ann+" pro enter", ann+" germans enter", bob+" germans enter")
	// Live traffic kept flowing meanwhile.
	h.identify("bob", map[string]any{"plan": "pro"})
	h.waitFor(ann+" pro enter", ann+" germans enter", bob+" germans enter", bob+" pro enter")
}

// TestTransitionIDsAreDeterministic: the same cause yields the same id.
func TestTransitionIDsAreDeterministic(t *testing.T) {
	tr := transition{segment: "s", version: 2, profile: "p", enter: true, causeID: "web/m1"}
	a, b := membershipID("w", tr), membershipID("w", tr)
	tr.enter = false
	c := membershipID("w", tr)
	if a != b || a == c || len(a) != 32 {
		t.Fatalf("ids %s %s %s", a, b, c)
	}
}

func (h *harness) memberships() []*segmentv1.Membership {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*segmentv1.Membership(nil), h.got...)
}
