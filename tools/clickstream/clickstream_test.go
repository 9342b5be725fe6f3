package clickstream

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/segmentapi"
)

// TestEveryGeneratedRequestIsAccepted runs a generator through many
// sessions and checks that the collector's own parser accepts every request,
// single or batched, with the ids and fields the clickstream promises.
func TestEveryGeneratedRequestIsAccepted(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, batch := range []int{1, 20, 100} {
		g := New(42, 50)
		seen := map[string]bool{}
		types := map[string]int{}
		events := map[string]int{}
		var buf []byte
		var eventBytes, n int
		for i := 0; i < 4000/batch; i++ {
			var path string
			buf, path = g.Request(buf[:0], batch, now)
			call := segmentapi.Call(strings.TrimPrefix(path, "/v1/"))
			if batch == 1 && call.IsBatch() || batch > 1 && call != segmentapi.CallBatch {
				t.Fatalf("batch %d posted to %s", batch, path)
			}
			if !json.Valid(buf) {
				t.Fatalf("not JSON: %s", buf)
			}
			req, errs := segmentapi.Parse(call, buf, now.Add(50*time.Millisecond), segmentapi.DefaultLimits())
			if len(errs) > 0 {
				t.Fatalf("rejected %s: %v\n%s", path, errs[0], buf)
			}
			if len(req.Messages) != batch {
				t.Fatalf("%d messages, want %d", len(req.Messages), batch)
			}
			for _, m := range req.Messages {
				ev := m.Event
				if seen[ev.MessageId] {
					t.Fatalf("messageId %s generated twice", ev.MessageId)
				}
				seen[ev.MessageId] = true
				if ev.AnonymousId == "" || ev.Context.GetLibrary().GetName() != "analytics.js" || ev.Context.GetPage().GetUrl() == "" ||
					ev.Context.GetUserAgent() == "" || ev.Context.GetIp() == "" || m.SentAt.IsZero() {
					t.Fatalf("event lacks analytics.js context: %s", m.Raw)
				}
				types[ev.Type.String()]++
				if ev.Event != "" {
					events[ev.Event]++
					var props map[string]any
					if err := json.Unmarshal(ev.PropertiesJson, &props); err != nil {
						t.Fatal(err)
					}
					switch ev.Event {
					case "Product Viewed", "Product Added":
						if props["product_id"] == nil || props["category"] == nil || props["price"] == nil {
							t.Errorf("%s without product_id, category, price: %s", ev.Event, ev.PropertiesJson)
						}
					case "Order Completed", "Order Refunded":
						if r, ok := props["revenue"].(float64); !ok || r <= 0 || ev.UserId == "" || props["order_id"] == nil {
							t.Errorf("%s without order_id, revenue or user: %s", ev.Event, m.Raw)
						}
					}
				}
				if ev.Type.String() == "EVENT_TYPE_IDENTIFY" {
					var traits map[string]any
					_ = json.Unmarshal(ev.TraitsJson, &traits)
					if ev.UserId == "" || traits["email"] == nil || traits["plan"] == nil {
						t.Errorf("identify without userId, email, plan: %s", m.Raw)
					}
				}
				eventBytes += len(m.Raw)
				n++
			}
		}
		for _, typ := range []string{"EVENT_TYPE_PAGE", "EVENT_TYPE_TRACK", "EVENT_TYPE_IDENTIFY"} {
			if types[typ] == 0 {
				t.Errorf("batch %d: no %s generated (%v)", batch, typ, types)
			}
		}
		for _, e := range []string{"Product Viewed", "Product Added", "Order Completed", "Order Refunded"} {
			if events[e] == 0 {
				t.Errorf("batch %d: no %q generated (%v)", batch, e, events)
			}
		}
		// Like a real analytics.js event: ~700–800 bytes.
		if avg := eventBytes / n; avg < 700 || avg > 870 {
			t.Errorf("batch %d: events average %d bytes, want ~700–800", batch, avg)
		} else {
			t.Logf("batch %d: %d events, %d bytes on average, types %v, tracks %v", batch, n, avg, types, events)
		}
	}
}

func TestClickstreamIsReproducible(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a, _ := New(7, 10).Request(nil, 20, now)
	b, _ := New(7, 10).Request(nil, 20, now)
	c, _ := New(8, 10).Request(nil, 20, now)
	if string(a) != string(b) {
		t.Error("same seed, different requests")
	}
	if string(a) == string(c) {
		t.Error("different seeds, same requests")
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "tab\tnewline\n\x01", "ünïcödé – ok"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil || got != s {
			t.Errorf("appendJSONString(%q) round-trips to %q, %v", s, got, err)
		}
	}
}

func BenchmarkRequest100(b *testing.B) {
	g := New(1, 1000)
	now := time.Now()
	var buf []byte
	for b.Loop() {
		buf, _ = g.Request(buf[:0], 100, now)
	}
	b.SetBytes(int64(len(buf)))
}
