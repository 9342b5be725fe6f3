package dedup

import "testing"

func TestInflight(t *testing.T) {
	var f Inflight
	a, b, c := ID{"ws", "web", "a"}, ID{"ws", "web", "b"}, ID{"ws", "web", "c"}
	f.Add([]Entry{{a, "raw/0/1/1"}, {b, "raw/0/2/1"}})
	f.Add([]Entry{{a, "raw/0/9/1"}}) // a later delivery: the first origin stays

	seen := []string{"", "", "", InBatch}
	f.Fill([]ID{a, b, c, a}, seen)
	if seen[0] != "raw/0/1/1" || seen[1] != "raw/0/2/1" || seen[2] != "" || seen[3] != InBatch {
		t.Fatalf("Fill = %q", seen)
	}
	seen = []string{"redis-origin"}
	f.Fill([]ID{a}, seen)
	if seen[0] != "redis-origin" {
		t.Fatalf("Fill overwrote what Redis answered: %q", seen)
	}

	f.Done([]Entry{{a, "raw/0/1/1"}, {b, "raw/0/2/1"}})
	if f.Len() != 1 {
		t.Fatalf("after the first batch is recorded, %d ids in flight, want 1 (a, held by the second)", f.Len())
	}
	f.Done([]Entry{{a, "raw/0/9/1"}, {c, "never added"}})
	if f.Len() != 0 {
		t.Fatalf("%d ids still in flight", f.Len())
	}
	seen = []string{""}
	f.Fill([]ID{a}, seen)
	if seen[0] != "" {
		t.Fatalf("a recorded id still answered from memory: %q", seen)
	}
}
