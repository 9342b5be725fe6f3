package segments

import (
	"slices"
	"testing"
	"time"
)

func TestTemplatesCompile(t *testing.T) {
	want := []string{"active", "churning", "dormant", "first_purchase", "registered"}
	if got := TemplateNames(); !slices.Equal(got, want) {
		t.Fatalf("templates = %v, want %v", got, want)
	}
	for name, src := range Templates() {
		if _, err := Compile(src); err != nil {
			t.Errorf("template %s: %v", name, err)
		}
	}
}

func template(t *testing.T, name string) *Segment {
	t.Helper()
	return mustCompile(t, string(Templates()[name]))
}

func TestLifecycleTemplates(t *testing.T) {
	day := 24 * time.Hour
	type step struct {
		events []Event
		p      Profile
		at     time.Duration
		want   bool
	}
	tests := []struct {
		template string
		steps    []step
	}{
		{"registered", []step{
			{nil, Profile{Identities: []string{"anonymous_id:a1"}}, 0, false},
			{nil, Profile{Identities: []string{"anonymous_id:a1", "user_id:42"}}, 0, true},
			{[]Event{ev("Signed Up", t0, `{}`)}, Profile{}, 0, true},
		}},
		{"first_purchase", []step{
			{nil, Profile{}, 0, false},
			{[]Event{ev("Order Completed", t0, `{}`)}, Profile{}, 0, true},
			{[]Event{ev("Order Completed", t0.Add(day), `{}`)}, Profile{}, day, false},
		}},
		{"active", []step{
			{nil, Profile{}, 0, false},
			{[]Event{ev("Page Viewed", t0, `{}`)}, Profile{}, 0, true},
			{nil, Profile{}, 30 * day, true}, // day bucket still overlaps
			{nil, Profile{}, 31 * day, false},
		}},
		{"dormant", []step{
			{nil, Profile{}, 0, false}, // never seen: unknown, not dormant
			{[]Event{ev("Page Viewed", t0, `{}`)}, Profile{}, 0, false},
			{nil, Profile{}, 30*day - time.Millisecond, false},
			{nil, Profile{}, 30 * day, true},
			{[]Event{ev("Page Viewed", t0.Add(40*day), `{}`)}, Profile{}, 40 * day, false},
		}},
		{"churning", []step{
			{[]Event{ev("Page Viewed", t0, `{}`)}, Profile{}, 20 * day, false}, // never ordered
			{[]Event{ev("Order Completed", t0, `{}`)}, Profile{}, 13 * day, false},
			{nil, Profile{}, 14 * day, true},
			{nil, Profile{}, 30 * day, false}, // dormant now
		}},
	}
	for _, tc := range tests {
		t.Run(tc.template, func(t *testing.T) {
			s := template(t, tc.template)
			st := &State{}
			for i, sp := range tc.steps {
				for _, e := range sp.events {
					s.Observe(st, e)
				}
				if got := mustEval(t, s, st, sp.p, t0.Add(sp.at)); got != sp.want {
					t.Fatalf("step %d at +%s: in=%v, want %v", i, sp.at, got, sp.want)
				}
			}
		})
	}
}

func TestDormantDeadline(t *testing.T) {
	s := template(t, "dormant")
	st := &State{}
	s.Observe(st, ev("Page Viewed", t0, `{}`))
	d, ok := s.NextDeadline(st, t0)
	if !ok || !d.Equal(t0.Add(30*24*time.Hour)) {
		t.Fatalf("NextDeadline = %s %v, want t0+30d", d, ok)
	}
	if _, ok := s.NextDeadline(st, d); ok {
		t.Fatal("deadline still pending once dormant")
	}
}

func TestSeedBackfillsDormant(t *testing.T) {
	s := template(t, "dormant")
	st := &State{}
	p := Profile{FirstSeen: t0.Add(-90 * 24 * time.Hour), LastSeen: t0.Add(-40 * 24 * time.Hour)}
	if !s.Seed(st, p) {
		t.Fatal("Seed changed nothing")
	}
	if !mustEval(t, s, st, p, t0) {
		t.Fatal("profile last seen 40 days ago is not dormant after Seed")
	}
	recent := Profile{LastSeen: t0.Add(-10 * 24 * time.Hour)}
	st = &State{}
	s.Seed(st, recent)
	if d, ok := s.NextDeadline(st, t0); !ok || !d.Equal(t0.Add(20*24*time.Hour)) {
		t.Fatalf("deadline after Seed = %s %v, want in 20 days", d, ok)
	}
	if template(t, "first_purchase").Seed(&State{}, p) {
		t.Fatal("Seed touched an event-filtered aggregate")
	}
}
