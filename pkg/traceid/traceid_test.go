package traceid

import (
	"context"
	"testing"
)

func TestNewIsValidAndUnique(t *testing.T) {
	a, b := New(), New()
	if !Valid(a) || !Valid(b) || a == b {
		t.Fatalf("New() gave %q and %q", a, b)
	}
	if From(With(context.Background(), a)) != a {
		t.Fatal("context round trip lost the id")
	}
	if From(context.Background()) != "" {
		t.Fatal("empty context has an id")
	}
}

func TestFromTraceparent(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736", true},
		{" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ", "4bf92f3577b34da6a3ce929d0e0e4736", true},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "", false},
		{"garbage", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := FromTraceparent(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("FromTraceparent(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzFromTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("---")
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := FromTraceparent(s); ok && !Valid(id) {
			t.Fatalf("accepted invalid id %q from %q", id, s)
		}
	})
}
