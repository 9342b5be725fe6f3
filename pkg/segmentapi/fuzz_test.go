package segmentapi

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds the decoder hostile bodies: whatever comes in, it must not
// panic, must answer with messages or errors (never both, never neither),
// and what it accepts must satisfy the invariants later stages rely on.
func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"userId":"u","event":"x"}`,
		`{"batch":[{"type":"track","userId":"u","event":"x"},{"type":"identify","anonymousId":"a","traits":{"email":"e@x.io"}}],"sentAt":"2026-01-01T00:00:00Z"}`,
		`{"userId":"u","event":"x",`,                                     // truncated
		`{"userId":"u","userId":"v","event":"x"}`,                        // duplicate key
		`{"userId":"u","event":"x","properties":{"n":1e999999999}}`,      // huge number
		`{"userId":"u","event":"x","properties":{"n":-0.0000000000e-9}}`, // odd number
		"{\"userId\":\"\xed\xa0\x80\",\"event\":\"x\"}",                  // invalid UTF-8 (surrogate)
		`{"userId":"\ud800","event":"x"}`,                                // lone surrogate escape
		`{"batch":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
		strings.Repeat(`{"a":`, 1000) + `1` + strings.Repeat(`}`, 1000),
		`{"batch":[null,1,"x",[],{}]}`,
		`{"userId":12345678901234567890123456789,"event":"x","timestamp":"2026-02-30T00:00:00Z"}`,
		`{"anonymousId":"a","event":"x","context":{"consent":{"categoryPreferences":[]},"externalIds":{},"screen":{"width":1e40}}}`,
		`{"batch":[{"type":"alias","previousId":{},"userId":"u"}],"context":{"ip":5}}`,
		"",
		"null",
		`"string"`,
	}
	for _, s := range seeds {
		for _, c := range Calls {
			f.Add(string(c), []byte(s))
		}
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, call string, body []byte) {
		c := Call(call)
		valid := false
		for _, k := range Calls {
			valid = valid || c == k
		}
		if !valid {
			c = CallTrack
		}
		req, errs := Parse(c, body, received, lim)
		if len(errs) > 0 && len(req.Messages) > 0 || len(errs) == 0 && len(req.Messages) == 0 {
			t.Fatalf("errors %v with %d messages", errs, len(req.Messages))
		}
		for _, e := range errs {
			if e.Status != 400 && e.Status != 413 || e.Message == "" || e.Code == "" {
				t.Fatalf("imprecise error %+v", e)
			}
		}
		for _, m := range req.Messages {
			ev := m.Event
			if ev.MessageId == "" || ev.Timestamp == nil || ev.ReceivedAt == nil {
				t.Fatalf("accepted event lacks filled-in fields: %v", ev)
			}
			if ev.UserId == "" && ev.AnonymousId == "" {
				t.Fatalf("accepted event without identity: %s", m.Raw)
			}
			if len(m.Raw) > lim.MaxBatchBytes+1 || !utf8.Valid(m.Raw) {
				t.Fatalf("raw is not bounded UTF-8")
			}
			if m.Key() == "" {
				t.Fatal("empty partition key")
			}
		}
	})
}
