package segments

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

func mustCompile(t testing.TB, src string) *Segment {
	t.Helper()
	s, err := Compile([]byte(src))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func ev(name string, at time.Time, props string) Event {
	return Event{MessageID: name + at.String(), Type: "track", Name: name, Time: at, Properties: []byte(props)}
}

// value reads one aggregate's current value, for assertions.
func value(t testing.TB, s *Segment, st *State, name string, now time.Time) any {
	t.Helper()
	for _, a := range s.aggs {
		if a.name == name {
			return a.value(st, now.UnixMilli())
		}
	}
	t.Fatalf("no aggregate %s", name)
	return nil
}

func mustEval(t testing.TB, s *Segment, st *State, p Profile, now time.Time) bool {
	t.Helper()
	in, err := s.Evaluate(st, p, now)
	if err != nil {
		t.Fatalf("Evaluate at %s: %v", now, err)
	}
	return in
}

func traits(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

func TestTraitConditions(t *testing.T) {
	tests := []struct {
		name, cond string
		p          Profile
		want       bool
	}{
		{"plan and country", `traits.plan == "pro" && traits.country in ["CN","DE"]`, Profile{Traits: traits("plan", `"pro"`, "country", `"DE"`)}, true},
		{"wrong country", `traits.plan == "pro" && traits.country in ["CN","DE"]`, Profile{Traits: traits("plan", `"pro"`, "country", `"FR"`)}, false},
		{"missing trait is false, not an error", `traits.plan == "pro"`, Profile{}, false},
		{"has guard", `!has(traits.plan)`, Profile{}, true},
		{"number vs int literal", `traits.age >= 30`, Profile{Traits: traits("age", `31`)}, true},
		{"nested", `traits.address.city == "Berlin"`, Profile{Traits: traits("address", `{"city":"Berlin"}`)}, true},
		{"identities", `identities.exists(i, i.startsWith("email:"))`, Profile{Identities: []string{"email:a@b.c"}}, true},
		{"no identities", `identities.exists(i, i.startsWith("email:"))`, Profile{}, false},
		{"first seen", `now - first_seen < duration("48h")`, Profile{FirstSeen: t0.Add(-24 * time.Hour)}, true},
		{"first seen old", `now - first_seen < duration("48h")`, Profile{FirstSeen: t0.Add(-72 * time.Hour)}, false},
		{"last seen", `last_seen > timestamp("2025-01-01T00:00:00Z")`, Profile{LastSeen: t0}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, "id: t\nversion: 1\nname: T\ncondition: '"+strings.ReplaceAll(tc.cond, "'", "''")+"'\n")
			if got := mustEval(t, s, &State{}, tc.p, t0); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

const audioViews = `
id: audio-fans
version: 1
name: Audio fans
condition: views >= 3
aggregates:
  views: {count: {event: "Product Viewed", where: 'properties.category == "audio"', within: 168h}}
`

func TestCountWindowAndFilter(t *testing.T) {
	s := mustCompile(t, audioViews)
	st := &State{}
	audio, video := `{"category":"audio"}`, `{"category":"video"}`
	steps := []struct {
		e       Event
		changed bool
	}{
		{ev("Product Viewed", t0, audio), true},
		{ev("Product Viewed", t0.Add(time.Hour), video), false},  // filtered out
		{ev("Product Viewed", t0.Add(2*time.Hour), `{}`), false}, // missing property: no match
		{ev("Product Viewed", t0.Add(2*time.Hour), `not json`), false},
		{ev("Cart Added", t0.Add(2*time.Hour), audio), false},
		{ev("Product Viewed", t0.Add(3*time.Hour), audio), true},
	}
	for i, step := range steps {
		if got := s.Observe(st, step.e); got != step.changed {
			t.Fatalf("step %d: changed=%v, want %v", i, got, step.changed)
		}
	}
	if mustEval(t, s, st, Profile{}, t0.Add(4*time.Hour)) {
		t.Fatal("in with 2 views")
	}
	s.Observe(st, ev("Product Viewed", t0.Add(4*time.Hour), audio))
	cases := []struct {
		at   time.Time
		want int64
		in   bool
	}{
		{t0.Add(4 * time.Hour), 3, true},
		{t0.Add(168 * time.Hour), 3, true},                  // t0's hour bucket still overlaps the window
		{t0.Add(169*time.Hour - time.Millisecond), 3, true}, // last instant of the t0 bucket
		{t0.Add(169 * time.Hour), 2, false},                 // t0's bucket has left the window
		{t0.Add(172 * time.Hour), 1, false},                 // 3h bucket gone too
		{t0.Add(173 * time.Hour), 0, false},                 // all gone
		{t0.Add(-time.Hour), 0, false},                      // before any event (future buckets do not count)
	}
	for _, c := range cases {
		if got := value(t, s, st, "views", c.at); got != c.want {
			t.Errorf("views at %s = %v, want %d", c.at.Sub(t0), got, c.want)
		}
		if got := mustEval(t, s, st, Profile{}, c.at); got != c.in {
			t.Errorf("in at %s = %v, want %v", c.at.Sub(t0), got, c.in)
		}
	}
	// NextDeadline walks the exits one by one.
	want := []time.Duration{169 * time.Hour, 172 * time.Hour, 173 * time.Hour}
	now := t0.Add(5 * time.Hour)
	for _, w := range want {
		d, ok := s.NextDeadline(st, now)
		if !ok || !d.Equal(t0.Add(w)) {
			t.Fatalf("NextDeadline(%s) = %s %v, want %s", now.Sub(t0), d.Sub(t0), ok, w)
		}
		now = d
	}
	if d, ok := s.NextDeadline(st, now); ok {
		t.Fatalf("NextDeadline after all exits = %s, want none", d.Sub(t0))
	}
}

func TestLateEventsLandInTheirBucket(t *testing.T) {
	s := mustCompile(t, audioViews)
	st := &State{}
	audio := `{"category":"audio"}`
	s.Observe(st, ev("Product Viewed", t0.Add(100*time.Hour), audio))
	// Late: 90 h older than the latest event, still inside the 7-day window.
	if !s.Observe(st, ev("Product Viewed", t0.Add(10*time.Hour+30*time.Minute), audio)) {
		t.Fatal("late event inside the window was not folded in")
	}
	b := st.Aggs["views"].Buckets
	if len(b) != 2 || b[0].Start != t0.Add(10*time.Hour).UnixMilli() || b[1].Start != t0.Add(100*time.Hour).UnixMilli() {
		t.Fatalf("buckets = %+v", b)
	}
	// The late event leaves the window on its own schedule.
	if got := value(t, s, st, "views", t0.Add(179*time.Hour)); got != int64(1) {
		t.Fatalf("views after the late bucket left = %v, want 1", got)
	}
	if d, _ := s.NextDeadline(st, t0.Add(100*time.Hour)); !d.Equal(t0.Add(179 * time.Hour)) {
		t.Fatalf("deadline = %s, want 179h", d.Sub(t0))
	}
	// Too late to ever count: older than the window before the watermark.
	if s.Observe(st, ev("Product Viewed", t0.Add(-100*time.Hour), audio)) {
		t.Fatal("event older than any open window changed the state")
	}
}

func TestStateStaysBounded(t *testing.T) {
	s := mustCompile(t, audioViews)
	st := &State{}
	for i := range 24 * 60 { // one event every hour for 60 days
		s.Observe(st, ev("Product Viewed", t0.Add(time.Duration(i)*time.Hour), `{"category":"audio"}`))
	}
	if n := len(st.Aggs["views"].Buckets); n > 169 {
		t.Fatalf("%d buckets kept for a 168 h window", n)
	}
}

func TestSumWindow(t *testing.T) {
	s := mustCompile(t, `
id: big-spenders
version: 1
name: Big spenders
condition: revenue_90d >= 500.0
aggregates:
  revenue_90d: {sum: {event: "Order Completed", property: revenue, within: 90d}}
`)
	st := &State{}
	for i, p := range []string{`{"revenue": 200}`, `{"revenue": "150.5"}`, `{"revenue": "n/a"}`, `{}`, `{"revenue": {"x":1}}`} {
		s.Observe(st, ev("Order Completed", t0.Add(time.Duration(i)*24*time.Hour), p))
	}
	if got := value(t, s, st, "revenue_90d", t0.Add(5*24*time.Hour)); got != 350.5 {
		t.Fatalf("revenue = %v, want 350.5", got)
	}
	if mustEval(t, s, st, Profile{}, t0.Add(5*24*time.Hour)) {
		t.Fatal("in at 350.5")
	}
	s.Observe(st, ev("Order Completed", t0.Add(10*24*time.Hour), `{"revenue": 149.5}`))
	if !mustEval(t, s, st, Profile{}, t0.Add(10*24*time.Hour)) {
		t.Fatal("not in at 500")
	}
	// Day buckets: the first order (day t0) leaves at t0's day end + 90 d.
	dayEnd := t0.Truncate(24 * time.Hour).Add(24 * time.Hour)
	if mustEval(t, s, st, Profile{}, dayEnd.Add(90*24*time.Hour)) {
		t.Fatal("still in after the first order left the window")
	}
	if d, _ := s.NextDeadline(st, t0.Add(10*24*time.Hour)); !d.Equal(dayEnd.Add(90 * 24 * time.Hour)) {
		t.Fatalf("deadline = %s", d)
	}
}

const abandonedCart = `
id: abandoned-cart
version: 1
name: Abandoned cart
condition: 'abandoned && traits.plan == "pro"'
aggregates:
  abandoned: {absence: {after: "Cart Added", missing: "Order Completed", within: 1h}}
`

func TestAbandonedCartTiming(t *testing.T) {
	s := mustCompile(t, abandonedCart)
	pro := Profile{ID: "p1", Traits: traits("plan", `"pro"`)}
	st := &State{}
	if !s.Observe(st, ev("Cart Added", t0, `{}`)) {
		t.Fatal("cart add did not change state")
	}
	d, ok := s.NextDeadline(st, t0)
	if !ok || !d.Equal(t0.Add(time.Hour)) {
		t.Fatalf("NextDeadline = %s %v, want t0+1h", d, ok)
	}
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{
		{0, false},
		{59 * time.Minute, false},
		{time.Hour - time.Millisecond, false},
		{time.Hour - time.Nanosecond, false},
		{time.Hour, true},
		{5 * time.Hour, true},
	} {
		if got := mustEval(t, s, st, pro, t0.Add(c.at)); got != c.want {
			t.Errorf("at +%s: in=%v, want %v", c.at, got, c.want)
		}
	}
	// The trait is part of the condition.
	if mustEval(t, s, st, Profile{Traits: traits("plan", `"free"`)}, t0.Add(2*time.Hour)) {
		t.Error("free plan in")
	}
	// Sub-millisecond event time: the deadline rounds up, never early.
	st2 := &State{}
	s.Observe(st2, ev("Cart Added", t0.Add(500*time.Microsecond), `{}`))
	if mustEval(t, s, st2, pro, t0.Add(time.Hour+400*time.Microsecond)) {
		t.Error("in before after+1h with a sub-ms event time")
	}
	if d, _ := s.NextDeadline(st2, t0); d.Before(t0.Add(time.Hour + 500*time.Microsecond)) {
		t.Errorf("deadline %s is early", d)
	}

	// The order follows the cart in time: exit, nothing pending.
	s.Observe(st, ev("Order Completed", t0.Add(2*time.Hour), `{}`))
	if mustEval(t, s, st, pro, t0.Add(3*time.Hour)) {
		t.Error("still in after the order")
	}
	if d, ok := s.NextDeadline(st, t0.Add(2*time.Hour)); ok {
		t.Errorf("deadline %s pending after the order", d)
	}
	// A new cart starts a new hour.
	s.Observe(st, ev("Cart Added", t0.Add(4*time.Hour), `{}`))
	if d, _ := s.NextDeadline(st, t0.Add(4*time.Hour)); !d.Equal(t0.Add(5 * time.Hour)) {
		t.Errorf("deadline after second cart = %s", d.Sub(t0))
	}
}

func TestAbandonedCartOrderInTime(t *testing.T) {
	s := mustCompile(t, abandonedCart)
	pro := Profile{Traits: traits("plan", `"pro"`)}
	tests := []struct {
		name   string
		events []Event
		at     time.Duration
		want   bool
	}{
		{"order within the hour", []Event{ev("Cart Added", t0, `{}`), ev("Order Completed", t0.Add(30*time.Minute), `{}`)}, 2 * time.Hour, false},
		{"late cart before an order", []Event{ev("Order Completed", t0.Add(30*time.Minute), `{}`), ev("Cart Added", t0, `{}`)}, 2 * time.Hour, false},
		{"order before the cart does not count", []Event{ev("Order Completed", t0.Add(-time.Minute), `{}`), ev("Cart Added", t0, `{}`)}, 2 * time.Hour, true},
		{"second cart after an order", []Event{ev("Cart Added", t0, `{}`), ev("Order Completed", t0.Add(10*time.Minute), `{}`), ev("Cart Added", t0.Add(20*time.Minute), `{}`)}, 80 * time.Minute, true},
		{"second cart not yet an hour old", []Event{ev("Cart Added", t0, `{}`), ev("Order Completed", t0.Add(10*time.Minute), `{}`), ev("Cart Added", t0.Add(20*time.Minute), `{}`)}, 79 * time.Minute, false},
		{"no cart", []Event{ev("Order Completed", t0, `{}`)}, 2 * time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &State{}
			for _, e := range tc.events {
				s.Observe(st, e)
			}
			if got := mustEval(t, s, st, pro, t0.Add(tc.at)); got != tc.want {
				t.Fatalf("in=%v, want %v", got, tc.want)
			}
		})
	}
}

func TestAbandonedCartLateOrder(t *testing.T) {
	// The cart entered the segment at +1h; an order placed at +30m but
	// delivered late (after the deadline) takes the profile out again.
	s := mustCompile(t, abandonedCart)
	pro := Profile{Traits: traits("plan", `"pro"`)}
	st := &State{}
	s.Observe(st, ev("Cart Added", t0, `{}`))
	if !mustEval(t, s, st, pro, t0.Add(2*time.Hour)) {
		t.Fatal("not in before the late order")
	}
	if !s.Observe(st, ev("Order Completed", t0.Add(30*time.Minute), `{}`)) {
		t.Fatal("late order changed nothing")
	}
	if mustEval(t, s, st, pro, t0.Add(2*time.Hour)) {
		t.Fatal("still in after the late order")
	}
}

func TestEvaluateErrors(t *testing.T) {
	// JSON numbers are doubles: comparing with int literals works, but
	// arithmetic mixing them is a runtime error, reported, not hidden.
	s := mustCompile(t, "id: t\nversion: 1\nname: T\ncondition: traits.n + 1 > 2\n")
	in, err := s.Evaluate(&State{}, Profile{ID: "p9", Traits: traits("n", `5`)}, t0)
	if err == nil || in || !strings.Contains(err.Error(), "profile p9") {
		t.Fatalf("in=%v err=%v, want an error naming the profile", in, err)
	}
	s = mustCompile(t, "id: t\nversion: 1\nname: T\ncondition: traits.n + 1.0 > 2.0\n")
	if !mustEval(t, s, nil, Profile{Traits: traits("n", `5`, "bad", `{`)}, t0) {
		t.Fatal("double arithmetic failed")
	}
}

func TestFirstAndLastSeen(t *testing.T) {
	s := mustCompile(t, `
id: seen
version: 1
name: Seen
condition: first_order < timestamp("2025-03-10T13:00:00Z") && last_event > first_order
aggregates:
  first_order: {first_seen: {event: "Order Completed"}}
  last_event: {last_seen: {}}
`)
	st := &State{}
	if got := value(t, s, st, "first_order", t0); got != epoch {
		t.Fatalf("never seen = %v, want epoch", got)
	}
	s.Observe(st, ev("Order Completed", t0.Add(2*time.Hour), `{}`))
	s.Observe(st, ev("Order Completed", t0, `{}`)) // late, earlier
	s.Observe(st, ev("Page Viewed", t0.Add(3*time.Hour), `{}`))
	if got := value(t, s, st, "first_order", t0); got != t0 {
		t.Fatalf("first_order = %v", got)
	}
	if got := value(t, s, st, "last_event", t0); got != t0.Add(3*time.Hour) {
		t.Fatalf("last_event = %v", got)
	}
	if !mustEval(t, s, st, Profile{}, t0.Add(4*time.Hour)) {
		t.Fatal("not in")
	}
	if _, ok := s.NextDeadline(st, t0); ok {
		t.Fatal("first/last seen set a deadline")
	}
}

func TestRecheckWhenConditionReadsNow(t *testing.T) {
	s := mustCompile(t, "id: new\nversion: 1\nname: New\nrecheck: 15m\ncondition: now - first_seen < duration(\"168h\")\n")
	d, ok := s.NextDeadline(&State{}, t0)
	if !ok || !d.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("NextDeadline = %s %v", d, ok)
	}
}

func TestMergeStates(t *testing.T) {
	s := mustCompile(t, `
id: merged
version: 1
name: Merged
condition: views >= 3 && orders >= 2 && abandoned && first > timestamp(0) && !quiet
aggregates:
  views: {count: {event: "Product Viewed", within: 24h}}
  orders: {count: {event: "Order Completed"}}
  abandoned: {absence: {after: "Cart Added", missing: "Order Completed", within: 1h}}
  first: {first_seen: {}}
  quiet: {inactive: {within: 720h}}
`)
	a, b := &State{}, &State{}
	s.Observe(a, ev("Product Viewed", t0, `{}`))
	s.Observe(a, ev("Product Viewed", t0.Add(2*time.Hour), `{}`))
	s.Observe(a, ev("Order Completed", t0.Add(3*time.Hour), `{}`))
	s.Observe(b, ev("Product Viewed", t0.Add(2*time.Hour+5*time.Minute), `{}`))
	s.Observe(b, ev("Order Completed", t0.Add(-time.Hour), `{}`))
	s.Observe(b, ev("Cart Added", t0.Add(4*time.Hour), `{}`))
	aj, _ := json.Marshal(a)

	m := MergeStates(a, b)
	now := t0.Add(5*time.Hour + 30*time.Minute)
	if got := value(t, s, m, "views", now); got != int64(3) {
		t.Errorf("views = %v, want 3", got)
	}
	if got := value(t, s, m, "orders", now); got != int64(2) {
		t.Errorf("orders = %v, want 2", got)
	}
	if got := value(t, s, m, "abandoned", now); got != true {
		t.Errorf("abandoned = %v: the cart (b) is later than the last order (a)", got)
	}
	if got := value(t, s, m, "first", now); got != t0.Add(-time.Hour) {
		t.Errorf("first = %v", got)
	}
	if !mustEval(t, s, m, Profile{}, now) {
		t.Error("merged profile not in")
	}
	if aj2, _ := json.Marshal(a); string(aj) != string(aj2) {
		t.Error("MergeStates modified its input")
	}
	if m := MergeStates(nil, b); value(t, s, m, "orders", now) != int64(1) {
		t.Error("merge with nil")
	}
}

func TestStateJSONRoundTripAndDefinitionChange(t *testing.T) {
	s := mustCompile(t, audioViews)
	st := &State{}
	for i := range 3 {
		s.Observe(st, ev("Product Viewed", t0.Add(time.Duration(i)*time.Minute), `{"category":"audio"}`))
	}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !mustEval(t, s, &back, Profile{}, t0.Add(time.Hour)) {
		t.Fatalf("round-tripped state lost counts: %s", raw)
	}
	// Editing the aggregate (a different filter) discards the old counts
	// rather than mixing two meanings.
	s2 := mustCompile(t, strings.Replace(audioViews, `"audio"`, `"video"`, 1))
	if got := value(t, s2, &back, "views", t0.Add(time.Hour)); got != int64(0) {
		t.Fatalf("views under edited definition = %v, want 0", got)
	}
	s2.Observe(&back, ev("Product Viewed", t0.Add(time.Hour), `{"category":"video"}`))
	if got := value(t, s2, &back, "views", t0.Add(time.Hour)); got != int64(1) {
		t.Fatalf("views after reset = %v, want 1", got)
	}
}

func TestAffected(t *testing.T) {
	s := mustCompile(t, abandonedCart)
	for _, c := range []struct {
		name string
		want bool
	}{{"Cart Added", true}, {"Order Completed", true}, {"Product Viewed", false}} {
		if got := s.Affected(ev(c.name, t0, `{}`)); got != c.want {
			t.Errorf("Affected(%s) = %v", c.name, got)
		}
	}
	traitOnly := mustCompile(t, "id: t\nversion: 1\nname: T\ncondition: traits.plan == 'pro'\n")
	if traitOnly.Affected(ev("Cart Added", t0, `{}`)) {
		t.Error("trait-only segment affected by an event")
	}
	pages := mustCompile(t, "id: p\nversion: 1\nname: P\ncondition: pv > 0\naggregates:\n  pv: {count: {type: page}}\n")
	if pages.Affected(ev("Cart Added", t0, `{}`)) || !pages.Affected(Event{Type: "page", Name: "Home"}) {
		t.Error("type matching")
	}
}
