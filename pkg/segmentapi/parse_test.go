package segmentapi

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

var received = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		call  Call
		body  string
		check func(t *testing.T, r Request)
	}{
		{"track with skew correction", CallTrack,
			`{"userId":"u1","event":"Order Completed","properties":{"revenue":42.5,"big":12345678901234567890},
			  "originalTimestamp":"2026-11-23T11:59:50.000Z","sentAt":"2026-11-23T11:59:55.000Z","messageId":"m-1"}`,
			func(t *testing.T, r Request) {
				ev := r.Messages[0].Event
				// device clock: sent 5 s after the event; received at 12:00:00 → event at 11:59:55
				if got := ev.Timestamp.AsTime(); !got.Equal(received.Add(-5 * time.Second)) {
					t.Errorf("timestamp = %v", got)
				}
				if ev.MessageId != "m-1" || ev.Event != "Order Completed" || ev.UserId != "u1" || ev.Type != eventv1.EventType_EVENT_TYPE_TRACK {
					t.Errorf("fields: %v", ev)
				}
				if !strings.Contains(string(ev.PropertiesJson), "12345678901234567890") {
					t.Errorf("properties lost integer precision: %s", ev.PropertiesJson)
				}
				if r.Messages[0].Key() != "u1" {
					t.Errorf("key = %q", r.Messages[0].Key())
				}
			}},
		{"numeric userId kept as text, messageId filled", CallIdentify,
			`{"userId":12345678901234567,"traits":{"email":"A@B.C"}}`,
			func(t *testing.T, r Request) {
				ev := r.Messages[0].Event
				if ev.UserId != "12345678901234567" {
					t.Errorf("userId = %q", ev.UserId)
				}
				if len(ev.MessageId) != 36 {
					t.Errorf("messageId not filled: %q", ev.MessageId)
				}
				if !ev.Timestamp.AsTime().Equal(received) || !ev.ReceivedAt.AsTime().Equal(received) {
					t.Errorf("no client time: timestamp must be receivedAt, got %v", ev.Timestamp.AsTime())
				}
				if string(ev.TraitsJson) != `{"email":"A@B.C"}` {
					t.Errorf("traits = %s", ev.TraitsJson)
				}
			}},
		{"batch: context merge, batch sentAt, anonymous key", CallBatch,
			`{"writeKey":"wk","sentAt":"2026-11-23T10:00:01Z","context":{"library":{"name":"analytics-node","version":"2.1"},"ip":"1.1.1.1"},
			  "batch":[
			    {"type":"page","anonymousId":"a1","name":"Home","timestamp":"2026-11-23T10:00:00Z","context":{"ip":"2.2.2.2","page":{"path":"/","url":"https://x.io/"}}},
			    {"type":"alias","previousId":"a1","userId":"u1"},
			    {"type":"group","userId":"u1","groupId":7,"traits":{"plan":"pro"}},
			    {"type":"screen","anonymousId":"a1","name":"Cart"}
			  ]}`,
			func(t *testing.T, r Request) {
				if r.WriteKey != "wk" || len(r.Messages) != 4 {
					t.Fatalf("writeKey %q, %d messages", r.WriteKey, len(r.Messages))
				}
				page := r.Messages[0].Event
				if page.Context.GetIp() != "2.2.2.2" || page.Context.GetLibrary().GetName() != "analytics-node" || page.Context.GetPage().GetPath() != "/" {
					t.Errorf("context not merged (event wins): %v", page.Context)
				}
				if got := page.Timestamp.AsTime(); !got.Equal(received.Add(-time.Second)) {
					t.Errorf("batch sentAt not applied: %v", got)
				}
				if r.Messages[1].Event.PreviousId != "a1" || r.Messages[2].Event.GroupId != "7" {
					t.Errorf("alias/group ids: %v %v", r.Messages[1].Event, r.Messages[2].Event)
				}
				if r.Messages[3].Event.Context.GetLibrary().GetName() != "analytics-node" {
					t.Error("batch context not applied to an event without context")
				}
				if r.Messages[0].Key() != "a1" {
					t.Errorf("key = %q, want the device", r.Messages[0].Key())
				}
			}},
		{"consent and external ids typed", CallTrack,
			`{"anonymousId":"a","event":"x","context":{"consent":{"categoryPreferences":{"Advertising":false,"Analytics":true,"Bad":"yes"}},
			  "externalIds":[{"id":"c-1","type":"crm_id","collection":"users","encoding":"none"},{"id":"","type":"x"},5],
			  "screen":{"width":"1920","height":1080},"app":{"build":42}}}`,
			func(t *testing.T, r Request) {
				c := r.Messages[0].Event.Context
				if len(c.Consent) != 2 || c.Consent["Advertising"] || !c.Consent["Analytics"] {
					t.Errorf("consent = %v", c.Consent)
				}
				if len(c.ExternalIds) != 1 || c.ExternalIds[0].Type != "crm_id" {
					t.Errorf("externalIds = %v", c.ExternalIds)
				}
				if c.Screen.Width != 1920 || c.Screen.Height != 1080 || c.App.Build != "42" {
					t.Errorf("lenient typing failed: %v %v", c.Screen, c.App)
				}
			}},
		{"explicit timestamp beside originalTimestamp is kept (RudderStack)", CallTrack,
			`{"userId":"u","event":"Order Imported","timestamp":"2024-01-02T03:04:05.678Z","originalTimestamp":"2026-11-23T11:59:59Z","sentAt":"2026-11-23T11:59:59Z"}`,
			func(t *testing.T, r Request) {
				ev := r.Messages[0].Event
				if got := ev.Timestamp.AsTime().Format(time.RFC3339Nano); got != "2024-01-02T03:04:05.678Z" {
					t.Errorf("timestamp = %s, want the explicit one", got)
				}
				if !ev.OriginalTimestamp.AsTime().Equal(time.Date(2026, 11, 23, 11, 59, 59, 0, time.UTC)) {
					t.Errorf("originalTimestamp = %v", ev.OriginalTimestamp.AsTime())
				}
			}},
		{"only timestamp (Segment SDKs) is skew-corrected", CallTrack,
			`{"userId":"u","event":"x","timestamp":"2026-11-23T13:00:00Z","sentAt":"2026-11-23T13:00:01Z"}`,
			func(t *testing.T, r Request) {
				if got := r.Messages[0].Event.Timestamp.AsTime(); !got.Equal(received.Add(-time.Second)) {
					t.Errorf("device clock 1 h fast: timestamp = %v, want receivedAt - 1 s", got)
				}
			}},
		{"identify traits from context.traits", CallIdentify,
			`{"userId":"u","context":{"traits":{"name":"Ann"}}}`,
			func(t *testing.T, r Request) {
				if string(r.Messages[0].Event.TraitsJson) != `{"name":"Ann"}` {
					t.Errorf("traits = %s", r.Messages[0].Event.TraitsJson)
				}
			}},
		{"unicode and nulls", CallTrack,
			`{"userId":"用户-1","anonymousId":null,"event":"Vue ✓","properties":null,"context":null,"timestamp":null}`,
			func(t *testing.T, r Request) {
				if r.Messages[0].Event.UserId != "用户-1" || r.Messages[0].Event.Event != "Vue ✓" {
					t.Errorf("%v", r.Messages[0].Event)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, errs := Parse(tt.call, []byte(tt.body), received, DefaultLimits())
			if len(errs) > 0 {
				t.Fatalf("rejected: %v", errs)
			}
			tt.check(t, r)
		})
	}
}

func TestParseRejects(t *testing.T) {
	lim := DefaultLimits()
	tests := []struct {
		name   string
		call   Call
		body   string
		status int
		code   Code
		index  int
		field  string
	}{
		{"malformed json", CallTrack, `{"userId":"u",`, 400, CodeInvalidJSON, -1, ""},
		{"not an object", CallTrack, `[1,2]`, 400, CodeInvalidJSON, -1, ""},
		{"no identity", CallTrack, `{"event":"x"}`, 400, CodeMissingIdentity, -1, "/userId"},
		{"empty identity", CallTrack, `{"event":"x","userId":"  ","anonymousId":""}`, 400, CodeMissingIdentity, -1, "/userId"},
		{"userId object", CallTrack, `{"event":"x","userId":{"a":1}}`, 400, CodeInvalidField, -1, "/userId"},
		{"userId bool", CallIdentify, `{"userId":true}`, 400, CodeInvalidField, -1, "/userId"},
		{"track without event", CallTrack, `{"userId":"u"}`, 400, CodeMissingField, -1, "/event"},
		{"track event number", CallTrack, `{"userId":"u","event":5}`, 400, CodeInvalidField, -1, "/event"},
		{"properties array", CallTrack, `{"userId":"u","event":"x","properties":[1]}`, 400, CodeInvalidField, -1, "/properties"},
		{"context string", CallPage, `{"userId":"u","context":"web"}`, 400, CodeInvalidField, -1, "/context"},
		{"bad timestamp", CallTrack, `{"userId":"u","event":"x","timestamp":"yesterday"}`, 400, CodeInvalidField, -1, "/timestamp"},
		{"numeric timestamp", CallTrack, `{"userId":"u","event":"x","timestamp":1700000000}`, 400, CodeInvalidField, -1, "/timestamp"},
		{"year 0001", CallTrack, `{"userId":"u","event":"x","sentAt":"0001-01-01T00:00:00Z"}`, 400, CodeInvalidField, -1, "/sentAt"},
		{"group without groupId", CallGroup, `{"userId":"u"}`, 400, CodeMissingField, -1, "/groupId"},
		{"alias without previousId", CallAlias, `{"userId":"u"}`, 400, CodeMissingField, -1, "/previousId"},
		{"duplicate key", CallTrack, `{"userId":"u","userId":"v","event":"x"}`, 400, CodeDuplicateKey, -1, "/userId"},
		{"invalid utf8", CallTrack, "{\"userId\":\"\xff\",\"event\":\"x\"}", 400, CodeInvalidUTF8, -1, ""},
		{"too deep", CallTrack, `{"userId":"u","event":"x","properties":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`, 400, CodeTooDeep, -1, ""},
		{"single event over 32 KB", CallTrack, `{"userId":"u","event":"x","properties":{"p":"` + strings.Repeat("x", 33<<10) + `"}}`, 413, CodeTooLarge, -1, ""},
		{"batch missing", CallBatch, `{"writeKey":"k"}`, 400, CodeMissingField, -1, "/batch"},
		{"batch not array", CallBatch, `{"batch":{}}`, 400, CodeInvalidField, -1, "/batch"},
		{"batch empty", CallBatch, `{"batch":[]}`, 400, CodeEmptyBatch, -1, "/batch"},
		{"batch element without type", CallBatch, `{"batch":[{"userId":"u","event":"x","type":"track"},{"userId":"u"}]}`, 400, CodeMissingField, 1, "/type"},
		{"batch element unknown type", CallBatch, `{"batch":[{"type":"purchase","userId":"u"}]}`, 400, CodeUnknownType, 0, "/type"},
		{"batch element not object", CallBatch, `{"batch":["x"]}`, 400, CodeMissingField, 0, "/type"},
		{"batch element missing identity", CallBatch, `{"batch":[{"type":"track","userId":"u","event":"a"},{"type":"track","event":"b"}]}`, 400, CodeMissingIdentity, 1, "/userId"},
		{"batch element over 32 KB", CallBatch, `{"batch":[{"type":"track","userId":"u","event":"x","properties":{"p":"` + strings.Repeat("x", 33<<10) + `"}}]}`, 400, CodeTooLarge, 0, ""},
		{"batch over 500 KB", CallBatch, `{"batch":[{"type":"track","userId":"u","event":"x","properties":{"p":"` + strings.Repeat("x", 501<<10) + `"}}]}`, 413, CodeTooLarge, -1, ""},
		{"batch over 2500 events", CallBatch, `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"page","userId":"u"},`, 2501), ",") + `]}`, 413, CodeTooLarge, -1, ""},
		{"batch sentAt bad", CallBatch, `{"sentAt":5,"batch":[{"type":"page","userId":"u"}]}`, 400, CodeInvalidField, -1, "/sentAt"},
		{"writeKey number", CallTrack, `{"writeKey":1,"userId":"u","event":"x"}`, 400, CodeInvalidField, -1, "/writeKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, errs := Parse(tt.call, []byte(tt.body), received, lim)
			if len(errs) == 0 {
				t.Fatalf("accepted: %v", r.Messages)
			}
			e := errs[0]
			if e.Status != tt.status || e.Code != tt.code || e.Index != tt.index || e.Field != tt.field || e.Message == "" {
				t.Errorf("got %d %s index=%d field=%q %q; want %d %s index=%d field=%q", e.Status, e.Code, e.Index, e.Field, e.Message, tt.status, tt.code, tt.index, tt.field)
			}
		})
	}
}

func TestMissingMessageIDIsStableAcrossRetries(t *testing.T) {
	withTime := []byte(`{"userId":"u","event":"x","timestamp":"2026-11-23T11:00:00Z","sentAt":"2026-11-23T11:00:01Z"}`)
	a, _ := Parse(CallTrack, withTime, received, DefaultLimits())
	b, _ := Parse(CallTrack, withTime, received.Add(time.Minute), DefaultLimits()) // the retry arrives later
	if a.Messages[0].Event.MessageId != b.Messages[0].Event.MessageId || !strings.HasPrefix(a.Messages[0].Event.MessageId, "fp-") {
		t.Fatalf("retry got another id: %s vs %s", a.Messages[0].Event.MessageId, b.Messages[0].Event.MessageId)
	}
	other, _ := Parse(CallTrack, []byte(`{"userId":"u","event":"y","timestamp":"2026-11-23T11:00:00Z","sentAt":"2026-11-23T11:00:01Z"}`), received, DefaultLimits())
	if other.Messages[0].Event.MessageId == a.Messages[0].Event.MessageId {
		t.Fatal("different events share an id")
	}
	noTime := []byte(`{"userId":"u","event":"x"}`)
	c, _ := Parse(CallTrack, noTime, received, DefaultLimits())
	d, _ := Parse(CallTrack, noTime, received, DefaultLimits())
	if c.Messages[0].Event.MessageId == d.Messages[0].Event.MessageId {
		t.Fatal("two calls without any client time may be two real events: they need distinct ids")
	}
}

func TestEventTime(t *testing.T) {
	r := received
	tests := []struct {
		name       string
		sent, orig time.Time
		want       time.Time
	}{
		{"device clock 1 h fast", r.Add(time.Hour), r.Add(time.Hour - 10*time.Second), r.Add(-10 * time.Second)},
		{"device clock 1 day slow", r.Add(-24 * time.Hour), r.Add(-24*time.Hour - time.Minute), r.Add(-time.Minute)},
		{"no sentAt: device time as is", time.Time{}, r.Add(-time.Hour), r.Add(-time.Hour)},
		{"nothing: receivedAt", time.Time{}, time.Time{}, r},
		{"sentAt only: receivedAt", r.Add(time.Hour), time.Time{}, r},
	}
	for _, tt := range tests {
		if got := EventTime(r, tt.sent, tt.orig); !got.Equal(tt.want) {
			t.Errorf("%s: EventTime = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]string{
		"2026-11-23T10:00:00Z":          "2026-11-23T10:00:00Z",
		"2026-11-23T10:00:00.123Z":      "2026-11-23T10:00:00.123Z",
		"2026-11-23T12:00:00.5+02:00":   "2026-11-23T10:00:00.5Z",
		"2026-11-23T10:00:00.123456789": "2026-11-23T10:00:00.123456789Z",
		"2026-11-23 10:00:00":           "2026-11-23T10:00:00Z",
		"2026-11-23T12:00:00+0200":      "2026-11-23T10:00:00Z",
		"2026-11-23":                    "2026-11-23T00:00:00Z",
	} {
		got, ok := ParseTime(in)
		if !ok || got.Format(time.RFC3339Nano) != want {
			t.Errorf("ParseTime(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "now", "23/11/2026", "1969-12-31T23:59:59Z", "2026-13-01T00:00:00Z"} {
		if _, ok := ParseTime(bad); ok {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

// TestGoldenTrack pins the normalized form of a full analytics.js-style
// event, so a change to normalization shows up as a diff.
func TestGoldenTrack(t *testing.T) {
	body := `{"type":"track","event":"Product Viewed","anonymousId":"anon-1","userId":"user-1","messageId":"ajs-1",
	  "properties":{"product_id":"p-9","price":19.99,"category":"audio"},
	  "context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","locale":"de-DE","timezone":"Europe/Berlin",
	    "library":{"name":"analytics.js","version":"next-1.70.0"},
	    "page":{"path":"/p/9","referrer":"https://google.com/","search":"?q=1","title":"Headphones","url":"https://shop.example/p/9?q=1"},
	    "campaign":{"name":"bf","source":"google","medium":"cpc","term":"headphones","content":"ad1"},
	    "device":{"id":"d1","type":"mobile"},"os":{"name":"iOS","version":"17"}},
	  "integrations":{"All":true},"originalTimestamp":"2026-11-23T11:00:00.000Z","sentAt":"2026-11-23T11:00:02.000Z"}`
	r, errs := Parse(CallTrack, []byte(body), received, DefaultLimits())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got, _ := protojson.MarshalOptions{Multiline: false, UseProtoNames: true}.Marshal(r.Messages[0].Event)
	checkGolden(t, "track.golden.json", got)
}
