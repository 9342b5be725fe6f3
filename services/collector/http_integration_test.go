package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// TestEveryEndpointLandsOnRawTopic posts one valid request to every path a
// Segment or RudderStack SDK uses, and checks the envelopes on the real
// broker: workspace, source, type, key by device, collector metadata.
func TestEveryEndpointLandsOnRawTopic(t *testing.T) {
	h := startCollector(t, nil)
	bodies := map[string]string{
		"/v1/track":    `{"anonymousId":"dev-1","event":"Product Viewed","properties":{"price":9.5}}`,
		"/v1/identify": `{"userId":"u-1","anonymousId":"dev-1","traits":{"email":"a@b.c"}}`,
		"/v1/page":     `{"anonymousId":"dev-1","name":"Home"}`,
		"/v1/screen":   `{"anonymousId":"dev-1","name":"Cart"}`,
		"/v1/group":    `{"userId":"u-1","groupId":"g-1"}`,
		"/v1/alias":    `{"userId":"u-1","previousId":"dev-1"}`,
		"/v1/batch":    `{"batch":[{"type":"track","anonymousId":"dev-2","event":"A"},{"type":"page","anonymousId":"dev-2"}]}`,
		"/v1/import":   `{"batch":[{"type":"track","userId":"u-9","event":"Imported","timestamp":"2020-01-01T00:00:00Z"}]}`,
		"/v1/t":        `{"anonymousId":"dev-3","event":"Short Path"}`,
		"/v1/i":        `{"anonymousId":"dev-3","userId":"u-3"}`,
		"/v1/p":        `{"anonymousId":"dev-3"}`,
		"/v1/s":        `{"anonymousId":"dev-3"}`,
		"/v1/g":        `{"anonymousId":"dev-3","groupId":"g"}`,
		"/v1/a":        `{"userId":"u-3","previousId":"dev-3"}`,
		"/v1/b":        `{"batch":[{"type":"identify","anonymousId":"dev-3","traits":{}}]}`,
	}
	want := 0
	for path, body := range bodies {
		r := h.post(path, []byte(body), basic(backendKey))
		if r.status != 200 || strings.TrimSpace(r.body) != `{"success":true}` {
			t.Fatalf("POST %s = %d %s", path, r.status, r.body)
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("POST %s: no X-Request-Id", path)
		}
		want += strings.Count(body, `"type"`)
		if !strings.Contains(body, `"batch"`) {
			want++
		}
	}
	envs, keys := envelopes(t, h, want)
	types := map[eventv1.EventType]int{}
	for i, env := range envs {
		if env.WorkspaceId != "acme" || env.SourceId != "backend" || env.MessageId == "" || env.SchemaVersion != 1 {
			t.Errorf("envelope metadata: %v", env)
		}
		ev := env.Event
		if env.MessageId != ev.MessageId {
			t.Errorf("envelope and event message ids differ")
		}
		wantKey := ev.AnonymousId
		if wantKey == "" {
			wantKey = ev.UserId
		}
		if string(keys[i]) != wantKey {
			t.Errorf("key = %q, want device/user %q", keys[i], wantKey)
		}
		if env.Collector.GetIp() != "127.0.0.1" || ev.Context.GetIp() != "127.0.0.1" || env.Collector.GetApi() != "http" || env.Collector.GetReceivedAt() == nil {
			t.Errorf("collector metadata: %v / context ip %q", env.Collector, ev.Context.GetIp())
		}
		if len(env.Raw) == 0 || !json.Valid(env.Raw) {
			t.Errorf("raw payload not kept: %q", env.Raw)
		}
		types[ev.Type]++
	}
	for _, typ := range []eventv1.EventType{eventv1.EventType_EVENT_TYPE_TRACK, eventv1.EventType_EVENT_TYPE_IDENTIFY, eventv1.EventType_EVENT_TYPE_PAGE, eventv1.EventType_EVENT_TYPE_SCREEN, eventv1.EventType_EVENT_TYPE_GROUP, eventv1.EventType_EVENT_TYPE_ALIAS} {
		if types[typ] == 0 {
			t.Errorf("no %v event landed", typ)
		}
	}
	// The historical import kept its own time.
	for _, env := range envs {
		if env.Event.Event == "Imported" && env.Event.Timestamp.AsTime().Year() != 2020 {
			t.Errorf("imported event time = %v", env.Event.Timestamp.AsTime())
		}
	}
}

func TestAuthModes(t *testing.T) {
	h := startCollector(t, nil)
	ok := []byte(`{"anonymousId":"a","event":"x"}`)
	tests := []struct {
		name    string
		body    []byte
		headers map[string]string
		status  int
		code    string
	}{
		{"basic auth", ok, basic(backendKey), 200, ""},
		{"writeKey in body, text/plain (browser)", []byte(`{"writeKey":"` + backendKey + `","anonymousId":"a","event":"x"}`), map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, 200, ""},
		{"no key", ok, nil, 401, "missing_write_key"},
		{"unknown key", ok, basic("wk_nobody_0123456789abcdef"), 401, "invalid_write_key"},
		{"unknown key in body", []byte(`{"writeKey":"wk_nobody_0123456789abcdef","anonymousId":"a","event":"x"}`), nil, 401, "invalid_write_key"},
		{"revoked source", ok, basic(revokedKey), 401, "invalid_write_key"},
		{"bearer is not basic", ok, map[string]string{"Authorization": "Bearer " + backendKey}, 401, "missing_write_key"},
		{"unknown key and bad body: 401 first", []byte(`{"anonymousId":5.5.5}`), basic("wk_nobody_0123456789abcdef"), 401, "invalid_write_key"},
		{"origin not allowed for source", ok, map[string]string{"Authorization": basic(webKey)["Authorization"], "Origin": "https://evil.example"}, 403, "origin_not_allowed"},
		{"allowed origin", ok, map[string]string{"Authorization": basic(webKey)["Authorization"], "Origin": "https://shop.example"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post("/v1/track", tt.body, tt.headers)
			if r.status != tt.status || tt.code != "" && !strings.Contains(r.body, `"code":"`+tt.code+`"`) {
				t.Fatalf("= %d %s; want %d %s", r.status, r.body, tt.status, tt.code)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// TestHostileInput sends every limit and error; each must get its precise
// status and a message naming the problem, and the rejected request must be
// recorded on the dead-letter topic.
func TestHostileInput(t *testing.T) {
	h := startCollector(t, nil)
	big := strings.Repeat("x", 33<<10)
	many := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"page","anonymousId":"a"},`, 2501), ",") + `]}`
	bomb := gz([]byte(`{"batch":[{"type":"track","anonymousId":"a","event":"x","properties":{"p":"` + strings.Repeat("A", 5<<20) + `"}}]}`))
	tests := []struct {
		name    string
		path    string
		body    []byte
		headers map[string]string
		status  int
		want    string // in the body
	}{
		{"malformed json", "/v1/track", []byte(`{"anonymousId":"a",`), nil, 400, "malformed JSON"},
		{"missing both ids", "/v1/track", []byte(`{"event":"x"}`), nil, 400, "either userId or anonymousId"},
		{"wrong type", "/v1/identify", []byte(`{"userId":["u"]}`), nil, 400, `"field":"/userId"`},
		{"bad timestamp", "/v1/track", []byte(`{"userId":"u","event":"x","timestamp":"soon"}`), nil, 400, "ISO-8601"},
		{"event over 32 KB", "/v1/track", []byte(`{"userId":"u","event":"x","properties":{"p":"` + big + `"}}`), nil, 413, "limit"},
		{"batch over 2500 events", "/v1/batch", []byte(many), nil, 413, "2500"},
		{"batch element over 32 KB", "/v1/batch", []byte(`{"batch":[{"type":"track","userId":"u","event":"x","properties":{"p":"` + big + `"}}]}`), nil, 400, `"index":0`},
		{"too deep", "/v1/track", []byte(`{"userId":"u","event":"x","properties":` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `}`), nil, 400, "levels deep"},
		{"invalid utf-8", "/v1/track", []byte("{\"userId\":\"\xc3\x28\",\"event\":\"x\"}"), nil, 400, "UTF-8"},
		{"duplicate key", "/v1/track", []byte(`{"userId":"a","userId":"b","event":"x"}`), nil, 400, "more than once"},
		{"gzip bomb", "/v1/batch", bomb, map[string]string{"Content-Encoding": "gzip"}, 413, "after decompression"},
		{"not gzip", "/v1/track", []byte(`{"userId":"u","event":"x"}`), map[string]string{"Content-Encoding": "gzip"}, 400, "not gzip"},
		{"unknown encoding", "/v1/track", []byte(`{}`), map[string]string{"Content-Encoding": "br"}, 415, "Content-Encoding"},
		{"form body", "/v1/track", []byte(`a=b`), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 400, "malformed JSON"},
		{"batch with one bad event", "/v1/batch", []byte(`{"batch":[{"type":"track","userId":"u","event":"ok"},{"type":"track","event":"no id"}]}`), nil, 400, `"index":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := basic(backendKey)
			for k, v := range tt.headers {
				headers[k] = v
			}
			r := h.post(tt.path, tt.body, headers)
			if r.status != tt.status || !strings.Contains(r.body, tt.want) {
				t.Fatalf("= %d %s; want %d containing %q", r.status, r.body, tt.status, tt.want)
			}
		})
	}
	// A gzip body within limits is accepted.
	if r := h.post("/v1/track", gz([]byte(`{"userId":"u","event":"Zipped"}`)), map[string]string{"Authorization": basic(backendKey)["Authorization"], "Content-Encoding": "gzip"}); r.status != 200 {
		t.Fatalf("gzip body = %d %s", r.status, r.body)
	}
	// Rejections that passed authentication are on the dead-letter topic,
	// each with a machine-readable reason.
	rejs, _ := readTopic(t, h.kafka, h.topics.Invalid, 10, func() *eventv1.Rejection { return &eventv1.Rejection{} })
	for _, r := range rejs {
		if r.Stage != "collector" || len(r.Violations) == 0 || r.Envelope.GetSourceId() != "backend" || r.Violations[0].Reason == eventv1.Reason_REASON_UNSPECIFIED {
			t.Errorf("rejection without a reason: %v", r)
		}
	}
	// Only the one valid gzip request reached the raw topic.
	envs, _ := envelopes(t, h, 1)
	if envs[0].Event.Event != "Zipped" {
		t.Fatalf("unexpected event on raw topic: %v", envs[0].Event)
	}
}

func TestCORS(t *testing.T) {
	h := startCollector(t, map[string]string{"FP_CORS_ORIGINS": "https://shop.example,https://app.example"})
	preflight := func(origin string) resp {
		return h.do("OPTIONS", "/v1/t", origin)
	}
	r := preflight("https://shop.example")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example" || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight = %d %v", r.status, r.header)
	}
	if r := preflight("https://evil.example"); r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from unlisted origin = %d %v", r.status, r.header)
	}
	ok := h.post("/v1/t", []byte(`{"writeKey":"`+backendKey+`","anonymousId":"a","event":"x"}`), map[string]string{"Content-Type": "text/plain", "Origin": "https://app.example"})
	if ok.status != 200 || ok.header.Get("Access-Control-Allow-Origin") != "https://app.example" || ok.header.Get("Vary") != "Origin" {
		t.Fatalf("browser post = %d %v", ok.status, ok.header)
	}
}

func TestRateLimitPerWriteKey(t *testing.T) {
	h := startCollector(t, nil)
	// burst 3 at 1 event/s: a batch of 3 passes, the next is refused.
	batch := []byte(`{"batch":[{"type":"page","anonymousId":"a"},{"type":"page","anonymousId":"a"},{"type":"page","anonymousId":"a"}]}`)
	if r := h.post("/v1/batch", batch, basic(slowKey)); r.status != 200 {
		t.Fatalf("within burst = %d %s", r.status, r.body)
	}
	r := h.post("/v1/batch", batch, basic(slowKey))
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("over limit = %d %s %v", r.status, r.body, r.header)
	}
	// Another source is not starved.
	if r := h.post("/v1/batch", batch, basic(backendKey)); r.status != 200 {
		t.Fatalf("other source = %d %s", r.status, r.body)
	}
}

func TestSourcesReloadRevokesKey(t *testing.T) {
	h := startCollector(t, nil)
	body := []byte(`{"anonymousId":"a","event":"x"}`)
	if r := h.post("/v1/track", body, basic(backendKey)); r.status != 200 {
		t.Fatalf("before = %d", r.status)
	}
	revoked := strings.Replace(testSources, backendKey, "wk_backend_rotated_0123456789", 1)
	if err := os.WriteFile(h.sources, []byte(revoked), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.post("/v1/track", body, basic(backendKey))
		if r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still accepted: %d", r.status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := h.post("/v1/track", body, basic("wk_backend_rotated_0123456789")); r.status != 200 {
		t.Fatalf("rotated key = %d %s", r.status, r.body)
	}
}

func (h *harness) do(method, path, origin string) resp {
	h.t.Helper()
	req, _ := newRequest(method, h.base+path)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	r, err := httpClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Body.Close()
	return resp{r.StatusCode, r.Header, fmt.Sprint(r.ContentLength)}
}
