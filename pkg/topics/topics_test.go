package topics

import (
	"strings"
	"testing"
)

func TestDefaultsMatchArchitecture(t *testing.T) {
	want := []string{"cdp.events.raw", "cdp.events.valid", "cdp.events.invalid", "cdp.events.resolved", "cdp.profiles.changes", "cdp.segments.membership", "cdp.segments.timers", "cdp.segments.webhooks.dead"}
	got := Defaults().All()
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("topic %d = %q, want %q", i, got[i], want[i])
		}
	}
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Names)
		want   string
	}{
		{"prefixed ok", func(n *Names) { *n = n.WithPrefix("test-1.") }, ""},
		{"empty", func(n *Names) { n.Raw = "" }, "FP_TOPIC_RAW"},
		{"bad char", func(n *Names) { n.Valid = "cdp events" }, "may only contain"},
		{"duplicate", func(n *Names) { n.Invalid = n.Valid }, "also used"},
		{"too long", func(n *Names) { n.Profiles = strings.Repeat("a", 250) }, "249"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Defaults()
			tt.mutate(&n)
			err := n.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
