package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestLine(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		note, want  string
	}{
		{0, 30, "", "1,000 events/s  0/30 s    0%"},
		{12, 30, "sent 12,000", "1,000 events/s  12/30 s   40%  sent 12,000"},
		{45, 30, "", "1,000 events/s  45/30 s  100%"}, // past the end: capped
		{3, 0, "", "1,000 events/s  3/0 s    0%"},     // no total: no share
	} {
		if got := Line("1,000 events/s", tc.done, tc.total, "s", tc.note); got != tc.want {
			t.Errorf("Line(%d, %d, %q) = %q, want %q", tc.done, tc.total, tc.note, got, tc.want)
		}
	}
}

// In a log (not a terminal) the bar is plain lines, throttled, and one
// summary at the end.
func TestBarInALog(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "loader", 100, "rows")
	b.Set(10, "first")  // printed: the first line comes at once
	b.Set(20, "second") // throttled: within 5 s of the first
	b.Done("100 rows/s")
	b.Done("again") // a second Done is ignored
	b.Set(30, "late")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "10/100 rows") || !strings.HasPrefix(lines[1], "loader: 100 rows/s (") {
		t.Errorf("output:\n%s", out.String())
	}
}
