package main

// Tests that drive the collector with the official SDKs people point at it,
// installed from npm into testdata/sdk (package-lock.json pins them; the
// tests run `npm ci` there when node_modules is missing or stale):
//
//   - TestSegmentNodeSDK: @segment/analytics-node;
//   - TestRudderStackNodeSDK: @rudderstack/rudder-sdk-node;
//   - TestAnalyticsNextInChromium: Segment's browser SDK, analytics-next, in
//     headless Debian Chromium (apt-get install -y chromium; FP_CHROMIUM
//     overrides /usr/bin/chromium) driven by playwright-core, fully offline.
//
// Each SDK runs as a child process (node testdata/sdk/<script>) against the
// in-process collector, through a recording pass-through proxy: the proxy
// forwards every request byte for byte and keeps a copy, so the test knows
// exactly what the SDK put on the wire (message ids, clocks, headers) without
// trusting the SDK's own hooks. Expectations come from
// testdata/sdk/scenario.json (the file the Node scripts send) and
// browserScenario (what browser/page.html sends), never from the wire alone.
// Node.js >= 20 and npm must be installed; without them the tests fail, and
// without Kafka they skip or fail by testinfra's rules.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/testinfra"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

const sdkDir = "testdata/sdk"

// nodeSDK describes one SDK and what it is known to put on the wire.
type nodeSDK struct {
	script  string // in testdata/sdk
	pkg     string // npm package, for its installed version
	library string // context.library.name the SDK sets
	// clockField is the event field carrying the device clock at the call:
	// Segment's libraries send "timestamp", RudderStack's "originalTimestamp".
	clockField string
	messageID  *regexp.Regexp // the form of the ids the SDK generates
	userAgent  *regexp.Regexp
	// extraProperties returns what the SDK itself adds to a call's
	// properties (documented SDK behaviour, not the collector's).
	extraProperties func(c scenarioCall) map[string]any
}

var sdkUUIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestSegmentNodeSDK sends identify/track/page/screen/group/alias calls
// through @segment/analytics-node (batches of 4, closeAndFlush) and checks
// every event on the raw topic.
func TestSegmentNodeSDK(t *testing.T) {
	runNodeSDK(t, nodeSDK{
		script: "segment-node.mjs", pkg: "@segment/analytics-node", library: "@segment/analytics-node",
		clockField: "timestamp",
		messageID:  regexp.MustCompile(`^node-next-\d{13}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`),
		userAgent:  regexp.MustCompile(`^analytics-node-next/`),
		extraProperties: func(c scenarioCall) map[string]any {
			// analytics-core copies a page's category into its properties.
			if c.Method == "page" && c.Args["category"] != nil {
				return map[string]any{"category": c.Args["category"]}
			}
			return nil
		},
	})
}

// TestRudderStackNodeSDK does the same through @rudderstack/rudder-sdk-node,
// which gzips its batches and names itself "analytics-node".
func TestRudderStackNodeSDK(t *testing.T) {
	runNodeSDK(t, nodeSDK{
		script: "rudder-node.mjs", pkg: "@rudderstack/rudder-sdk-node", library: "analytics-node",
		clockField: "originalTimestamp",
		messageID:  sdkUUIDRE,
		userAgent:  regexp.MustCompile(`^analytics-node/`),
	})
}

func runNodeSDK(t *testing.T, sdk nodeSDK) {
	start := time.Now()
	h := startCollector(t, nil) // skips or fails by testinfra's rules without Kafka
	node := nodeModules(t)
	rec := newWireRecorder(t, h.base)
	runID := fmt.Sprintf("%d", time.Now().UnixNano())
	calls := loadScenario(t, runID)

	out := runNode(t, node, sdk.script, map[string]string{
		"FP_COLLECTOR_URL": rec.URL(), "FP_WRITE_KEY": backendKey, "FP_RUN_ID": runID,
	}, rec)
	t.Logf("%s: %s", sdk.script, strings.TrimSpace(out))
	version := installedVersion(t, sdk.pkg)

	// What the SDK sent: every request answered 200, events batched.
	reqs := rec.requests()
	wire := map[string]wireEvent{} // by scenario key
	batchSizes := []int{}
	for i, r := range reqs {
		if r.method != http.MethodPost || r.path != "/v1/batch" {
			t.Errorf("request %d: %s %s; the SDKs post to /v1/batch", i, r.method, r.path)
		}
		if r.status != http.StatusOK || strings.TrimSpace(r.respBody) != `{"success":true}` {
			t.Errorf("request %d (Content-Type %q, Content-Encoding %q) answered %d %s", i, r.header.Get("Content-Type"), r.header.Get("Content-Encoding"), r.status, r.respBody)
		}
		if got := basicUser(r.header.Get("Authorization")); got != backendKey {
			t.Errorf("request %d: Basic-auth user %q, want the write key", i, got)
		}
		if !sdk.userAgent.MatchString(r.header.Get("User-Agent")) {
			t.Errorf("request %d: User-Agent %q, want %v", i, r.header.Get("User-Agent"), sdk.userAgent)
		}
		evs := r.events(t)
		batchSizes = append(batchSizes, len(evs))
		for _, e := range evs {
			k := e.key()
			if _, dup := wire[k]; dup {
				t.Fatalf("the SDK sent %s twice (retried after a success?)", k)
			}
			wire[k] = e
		}
	}
	if len(wire) != len(calls) {
		t.Fatalf("the SDK sent %d events for %d calls", len(wire), len(calls))
	}
	if len(reqs) < 2 || largest(batchSizes) < 2 {
		t.Fatalf("the SDK did not batch as configured (flushAt 4): batch sizes %v", batchSizes)
	}

	envs, keys := envelopes(t, h, len(calls))
	if len(envs) != len(calls) {
		t.Fatalf("%d envelopes on the raw topic for %d calls", len(envs), len(calls))
	}
	byRequest := map[string]int{}
	seen := map[string]bool{}
	for i, env := range envs {
		ev := env.Event
		byRequest[env.Collector.GetRequestId()]++
		k := eventKey(eventTypeName(ev.Type), ev.UserId, ev.AnonymousId, ev.Event+ev.Name+ev.GroupId+ev.PreviousId)
		call, ok := findCall(calls, k)
		if !ok {
			t.Errorf("envelope %d is no call of the scenario: %s", i, k)
			continue
		}
		if seen[k] {
			t.Errorf("%s landed twice", k)
		}
		seen[k] = true
		w := wire[k]
		t.Run(strings.ReplaceAll(k, "/", "_"), func(t *testing.T) {
			checkEnvelope(t, sdk, version, call, w, env, string(keys[i]), start)
		})
	}
	// One collector request id per SDK request, carrying that request's events.
	got := make([]int, 0, len(byRequest))
	for _, n := range byRequest {
		got = append(got, n)
	}
	sort.Ints(got)
	sort.Ints(batchSizes)
	if !reflect.DeepEqual(got, batchSizes) {
		t.Errorf("events per collector request id %v, want the SDK's batch sizes %v", got, batchSizes)
	}
}

func checkEnvelope(t *testing.T, sdk nodeSDK, version string, c scenarioCall, w wireEvent, env *eventv1.Envelope, key string, start time.Time) {
	ev := env.Event
	// Envelope metadata.
	if env.SchemaVersion != 1 || env.WorkspaceId != "acme" || env.SourceId != "backend" {
		t.Errorf("schema/workspace/source = %d/%q/%q, want 1/acme/backend", env.SchemaVersion, env.WorkspaceId, env.SourceId)
	}
	// The SDK's message id survives, in both places.
	if !sdk.messageID.MatchString(w.messageID) {
		t.Errorf("the SDK's messageId %q does not look like %v", w.messageID, sdk.messageID)
	}
	if ev.MessageId != w.messageID || env.MessageId != w.messageID {
		t.Errorf("messageId envelope %q / event %q, want the SDK's %q", env.MessageId, ev.MessageId, w.messageID)
	}
	// Identity and partition key (device, else user).
	if ev.UserId != c.str("userId") || ev.AnonymousId != c.str("anonymousId") {
		t.Errorf("userId/anonymousId = %q/%q, want %q/%q", ev.UserId, ev.AnonymousId, c.str("userId"), c.str("anonymousId"))
	}
	wantKey := c.str("anonymousId")
	if wantKey == "" {
		wantKey = c.str("userId")
	}
	if key != wantKey {
		t.Errorf("partition key %q, want %q", key, wantKey)
	}
	// Names.
	if ev.Type.String() != "EVENT_TYPE_"+strings.ToUpper(c.Method) {
		t.Errorf("type %v, want %s", ev.Type, c.Method)
	}
	for _, f := range []struct{ name, got string }{{"event", ev.Event}, {"name", ev.Name}, {"category", ev.Category}, {"groupId", ev.GroupId}, {"previousId", ev.PreviousId}} {
		if f.got != c.str(f.name) {
			t.Errorf("%s = %q, want %q", f.name, f.got, c.str(f.name))
		}
	}
	// Free-form objects, as the app passed them (plus what the SDK adds).
	switch c.Method {
	case "identify", "group":
		sameJSON(t, "traits", ev.TraitsJson, c.Args["traits"])
	case "track", "page", "screen":
		want := map[string]any{}
		if p, ok := c.Args["properties"].(map[string]any); ok {
			for k, v := range p {
				want[k] = v
			}
		}
		if sdk.extraProperties != nil {
			for k, v := range sdk.extraProperties(c) {
				want[k] = v
			}
		}
		sameJSON(t, "properties", ev.PropertiesJson, want)
	}
	if c.Method != "identify" && c.Method != "group" && len(ev.TraitsJson) > 0 {
		t.Errorf("%s carries traits %s", c.Method, ev.TraitsJson)
	}
	// Context: the SDK's whole object unchanged, and the typed fields.
	sameJSON(t, "context", ev.ContextJson, w.raw["context"])
	lib := ev.Context.GetLibrary()
	if lib.GetName() != sdk.library || lib.GetVersion() != version {
		t.Errorf("context.library = %q %q, want %q %q", lib.GetName(), lib.GetVersion(), sdk.library, version)
	}
	if ctx, ok := c.Args["context"].(map[string]any); ok {
		if ctx["locale"] != nil && (ev.Context.GetLocale() != ctx["locale"] || ev.Context.GetTimezone() != ctx["timezone"]) {
			t.Errorf("context locale/timezone = %q/%q, want %v/%v", ev.Context.GetLocale(), ev.Context.GetTimezone(), ctx["locale"], ctx["timezone"])
		}
		if camp, ok := ctx["campaign"].(map[string]any); ok {
			got := ev.Context.GetCampaign()
			if got.GetName() != camp["name"] || got.GetSource() != camp["source"] || got.GetMedium() != camp["medium"] {
				t.Errorf("context.campaign = %v, want %v", got, camp)
			}
		}
	}
	if ev.Context.GetIp() != "127.0.0.1" {
		t.Errorf("context.ip = %q, want the sender's address", ev.Context.GetIp())
	}
	// The raw event is kept as the SDK sent it.
	var raw map[string]any
	if err := json.Unmarshal(env.Raw, &raw); err != nil || raw["messageId"] != w.messageID {
		t.Errorf("raw event not kept (%v): %.200s", err, env.Raw)
	}
	// Collector metadata.
	col := env.Collector
	if col.GetApi() != "http" || col.GetEndpoint() != "/v1/batch" || col.GetIp() != "127.0.0.1" || col.GetRequestId() == "" {
		t.Errorf("collector metadata %v", col)
	}
	if col.GetUserAgent() != w.userAgent {
		t.Errorf("collector user agent %q, want the SDK's %q", col.GetUserAgent(), w.userAgent)
	}
	// Clocks: sentAt and the device clock as the SDK sent them, receivedAt
	// now, and the event time skew-corrected.
	received := ev.ReceivedAt.AsTime()
	now := time.Now()
	if ev.ReceivedAt == nil || received.Before(start.Add(-time.Second)) || received.After(now) || !col.GetReceivedAt().AsTime().Equal(received) {
		t.Errorf("receivedAt %v (collector %v), want between %v and %v", received, col.GetReceivedAt().AsTime(), start, now)
	}
	if ev.SentAt == nil || !ev.SentAt.AsTime().Equal(w.sentAt) || !col.GetSentAt().AsTime().Equal(w.sentAt) {
		t.Errorf("sentAt event %v / collector %v, want the SDK's %v", ev.SentAt.AsTime(), col.GetSentAt().AsTime(), w.sentAt)
	}
	clock, err := time.Parse(time.RFC3339Nano, w.str(sdk.clockField))
	if err != nil {
		t.Fatalf("the SDK sent no %s: %v", sdk.clockField, err)
	}
	if ev.OriginalTimestamp == nil || !ev.OriginalTimestamp.AsTime().Equal(clock) {
		t.Errorf("originalTimestamp %v, want the SDK's %s %v", ev.OriginalTimestamp.AsTime(), sdk.clockField, clock)
	}
	ts := ev.Timestamp.AsTime()
	if explicit := c.str("timestamp"); explicit != "" {
		// The app set the event time (a historical import): it is the
		// event's time, give or take the request's transit.
		want, _ := time.Parse(time.RFC3339Nano, explicit)
		if d := ts.Sub(want); d < -5*time.Second || d > 5*time.Second {
			t.Errorf("timestamp %v, want the app's explicit timestamp %v (the SDK sent timestamp=%v originalTimestamp=%v sentAt=%v)",
				ts, want, w.raw["timestamp"], w.raw["originalTimestamp"], w.sentAt)
		}
		return
	}
	if want := received.Add(-w.sentAt.Sub(clock)); !ts.Equal(want) {
		t.Errorf("timestamp %v, want receivedAt - (sentAt - %s) = %v", ts, sdk.clockField, want)
	}
	if d := now.Sub(ts); d < 0 || d > time.Minute {
		t.Errorf("timestamp %v is not within a minute before now (%v)", ts, now)
	}
}

// --- scenario -------------------------------------------------------------

type scenarioCall struct {
	Method string         `json:"method"`
	Args   map[string]any `json:"args"`
}

func (c scenarioCall) str(k string) string { s, _ := c.Args[k].(string); return s }

func (c scenarioCall) key() string {
	return eventKey(c.Method, c.str("userId"), c.str("anonymousId"), c.str("event")+c.str("name")+c.str("groupId")+c.str("previousId"))
}

func eventKey(typ, userID, anonID, name string) string {
	return typ + " " + name + " user=" + userID + " anon=" + anonID
}

func loadScenario(t *testing.T, runID string) []scenarioCall {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sdkDir, "scenario.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Calls []scenarioCall }
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(b), "{run}", runID)), &s); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, c := range s.Calls {
		if keys[c.key()] {
			t.Fatalf("scenario.json: two calls share %s; make each call distinguishable", c.key())
		}
		keys[c.key()] = true
	}
	return s.Calls
}

func findCall(calls []scenarioCall, key string) (scenarioCall, bool) {
	for _, c := range calls {
		if c.key() == key {
			return c, true
		}
	}
	return scenarioCall{}, false
}

func eventTypeName(t eventv1.EventType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "EVENT_TYPE_"))
}

// sameJSON compares JSON text with a decoded value (numbers as float64).
func sameJSON(t *testing.T, what string, got []byte, want any) {
	t.Helper()
	var g any
	if len(got) > 0 {
		if err := json.Unmarshal(got, &g); err != nil {
			t.Errorf("%s is not JSON: %v: %.200s", what, err, got)
			return
		}
	}
	// Normalise want through JSON so both sides have the same Go types.
	wb, _ := json.Marshal(want)
	var w any
	_ = json.Unmarshal(wb, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s\nwant %s", what, got, wb)
	}
}

func largest(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// --- node and npm -------------------------------------------------------

var (
	npmOnce sync.Once
	npmErr  error
	nodeBin string
)

// nodeModules makes sure testdata/sdk/node_modules matches package-lock.json
// (running `npm ci` when it does not) and returns the node binary.
func nodeModules(t *testing.T) string {
	t.Helper()
	npmOnce.Do(func() {
		var err error
		if nodeBin, err = exec.LookPath("node"); err != nil {
			npmErr = errors.New("node is not installed: these tests run the official SDKs under Node.js >= 20 (Debian: apt-get install -y nodejs npm)")
			return
		}
		out, err := exec.Command(nodeBin, "--version").Output()
		var major int
		if _, serr := fmt.Sscanf(string(out), "v%d.", &major); err != nil || serr != nil || major < 20 {
			npmErr = fmt.Errorf("node --version = %q (%v): @segment/analytics-node needs Node.js >= 20", strings.TrimSpace(string(out)), err)
			return
		}
		if lockMatchesInstall(sdkDir) {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = fmt.Errorf("%s/node_modules is missing or stale and npm is not installed to run `npm ci` there (Debian: apt-get install -y npm)", sdkDir)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = sdkDir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci in %s: %v\n%s", sdkDir, err, out)
			return
		}
		if !lockMatchesInstall(sdkDir) {
			npmErr = fmt.Errorf("npm ci in %s did not install what package-lock.json lists", sdkDir)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	return nodeBin
}

// lockMatchesInstall reports whether every direct dependency in
// package-lock.json is installed at the locked version.
func lockMatchesInstall(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	var lock struct {
		Packages map[string]struct {
			Version      string            `json:"version"`
			Dependencies map[string]string `json:"dependencies"`
		} `json:"packages"`
	}
	if json.Unmarshal(b, &lock) != nil {
		return false
	}
	for name := range lock.Packages[""].Dependencies {
		want := lock.Packages["node_modules/"+name].Version
		if got, err := readVersion(dir, name); err != nil || got != want {
			return false
		}
	}
	return true
}

func readVersion(dir, pkg string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	if err != nil {
		return "", err
	}
	var p struct{ Version string }
	if err := json.Unmarshal(b, &p); err != nil {
		return "", err
	}
	return p.Version, nil
}

func installedVersion(t *testing.T, pkg string) string {
	t.Helper()
	v, err := readVersion(sdkDir, pkg)
	if err != nil || v == "" {
		t.Fatalf("version of %s: %v", pkg, err)
	}
	return v
}

// runNode runs a script in testdata/sdk to its end (45 s at most) and returns
// its standard output; a non-zero exit fails the test with its output and
// the collector's answers.
func runNode(t *testing.T, node, script string, env map[string]string, rec *wireRecorder) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = sdkDir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var answers []string
		for _, r := range rec.requests() {
			answers = append(answers, fmt.Sprintf("  %s %s (Content-Type %q, Content-Encoding %q, %d bytes) -> %d %s",
				r.method, r.path, r.header.Get("Content-Type"), r.header.Get("Content-Encoding"), len(r.body), r.status, strings.TrimSpace(r.respBody)))
		}
		t.Fatalf("node %s: %v (timed out: %v)\nstderr:\n%s\nstdout:\n%s\nrequests the SDK made:\n%s",
			script, err, ctx.Err() != nil, stderr.String(), stdout.String(), strings.Join(answers, "\n"))
	}
	return stdout.String()
}

// --- recording proxy ------------------------------------------------------

type wireRequest struct {
	method, path string
	header       http.Header
	body         []byte // decoded (gunzipped when the SDK gzipped it)
	status       int
	respBody     string
}

// wireEvent is one event as the SDK sent it.
type wireEvent struct {
	raw       map[string]any
	messageID string
	sentAt    time.Time // the event's own sentAt, else the batch's
	userAgent string
}

func (e wireEvent) str(k string) string { s, _ := e.raw[k].(string); return s }

func (e wireEvent) key() string {
	return eventKey(e.str("type"), e.str("userId"), e.str("anonymousId"), e.str("event")+e.str("name")+e.str("groupId")+e.str("previousId"))
}

// events decodes a batch request the SDK sent.
func (r wireRequest) events(t *testing.T) []wireEvent {
	t.Helper()
	var body struct {
		Batch  []map[string]any `json:"batch"`
		SentAt string           `json:"sentAt"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("the SDK sent a body that is not a JSON batch: %v: %.300s", err, r.body)
	}
	out := make([]wireEvent, 0, len(body.Batch))
	for _, raw := range body.Batch {
		e := wireEvent{raw: raw, userAgent: r.header.Get("User-Agent")}
		e.messageID = e.str("messageId")
		sent := e.str("sentAt")
		if sent == "" {
			sent = body.SentAt
		}
		var err error
		if e.sentAt, err = time.Parse(time.RFC3339Nano, sent); err != nil {
			t.Fatalf("the SDK sent no sentAt (%v): %.300s", err, r.body)
		}
		out = append(out, e)
	}
	return out
}

// wireRecorder is a pass-through proxy to the collector that keeps a copy of
// every request and the collector's answer. Bodies and headers are
// forwarded unchanged (the collector sees what the SDK sent).
type wireRecorder struct {
	srv    *httptest.Server
	target string
	mu     sync.Mutex
	reqs   []wireRequest
}

func newWireRecorder(t *testing.T, target string) *wireRecorder {
	r := &wireRecorder{target: target}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *wireRecorder) URL() string { return r.srv.URL }

func (r *wireRecorder) requests() []wireRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]wireRequest(nil), r.reqs...)
}

var proxyHopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade"}

func (r *wireRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, r.target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	for _, h := range proxyHopHeaders {
		out.Header.Del(h)
	}
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(resp.Body)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)

	decoded := body
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if b, err := io.ReadAll(zr); err == nil {
				decoded = b
			}
		}
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, wireRequest{method: req.Method, path: req.URL.Path, header: req.Header.Clone(), body: decoded, status: resp.StatusCode, respBody: string(respBody)})
	r.mu.Unlock()
}

// --- browser: analytics-next in headless Chromium ---------------------------

const browserKey = "wk_browser_test_0123456789abc"

// anonSentinel stands for the anonymousId the browser generated.
const anonSentinel = "<anonymousId>"

// browserEvent is what the page (testdata/sdk/browser/page.html) sends, in
// order.
type browserEvent struct {
	typ, name, category, groupID, previousID string
	user                                     string // the userId the event carries
	props, traits                            map[string]any
}

func browserScenario(run string) []browserEvent {
	return []browserEvent{
		{typ: "page", name: "Pricing", category: "Docs", props: map[string]any{"plan": "pro"}},
		{typ: "track", name: "Product Viewed", props: map[string]any{"product_id": "sku-" + run, "price": 19.99, "currency": "EUR"}},
		{typ: "alias", user: "user-" + run, previousID: anonSentinel},
		{typ: "identify", user: "user-" + run, traits: map[string]any{"email": "ada+" + run + "@example.com", "plan": "pro", "logins": 5.0}},
		{typ: "track", name: "Product Added", user: "user-" + run, props: map[string]any{"product_id": "sku-" + run, "quantity": 2.0}},
		{typ: "group", groupID: "org-" + run, user: "user-" + run, traits: map[string]any{"name": "Acme Ltd", "employees": 420.0}},
		{typ: "screen", name: "Checkout", category: "App", user: "user-" + run, props: map[string]any{"step": 2.0}},
		{typ: "track", name: "Café Visité ✓", user: "user-" + run, props: map[string]any{"emoji": "🎉"}},
	}
}

// TestAnalyticsNextInChromium loads Segment's analytics-next (the UMD build
// of the npm package, served locally) in headless Debian Chromium, on a page
// whose origin is allowed for a browser source, and checks what its
// page/track/identify/group/screen/alias calls put on the raw topic: once
// with the default delivery (one fetch per call to /v1/p, /v1/t, …, with
// Basic auth, hence CORS preflights) and once batching (/v1/b).
func TestAnalyticsNextInChromium(t *testing.T) {
	testinfra.Kafka(t) // skips or fails by testinfra's rules before anything else
	chromium := os.Getenv("FP_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s (set FP_CHROMIUM, or on Debian: apt-get install -y chromium): %v", chromium, err)
	}
	node := nodeModules(t)
	umd, err := filepath.Abs(filepath.Join(sdkDir, "node_modules/@segment/analytics-next/dist/umd"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/analytics-next/bundles/", http.StripPrefix("/analytics-next/bundles/", http.FileServer(http.Dir(umd))))
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(sdkDir, "browser", "page.html"))
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)

	version := installedVersion(t, "@segment/analytics-next")

	for _, mode := range []string{"standard", "batching"} {
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			h := startCollector(t, map[string]string{"FP_CORS_ORIGINS": site.URL}) // own topics
			allowBrowserSource(t, h, site.URL)
			rec := newWireRecorder(t, h.base)
			run := fmt.Sprintf("%s-%d", mode, time.Now().UnixNano())
			want := browserScenario(run)
			pageURL := site.URL + "/page.html?" + pageQuery(map[string]string{
				"key": browserKey, "api": strings.TrimPrefix(rec.URL(), "http://") + "/v1", "mode": mode, "run": run,
			})
			out := runNode(t, node, "browser.mjs", map[string]string{
				"FP_PAGE_URL": pageURL, "FP_COLLECTOR_URL": rec.URL(), "FP_CHROMIUM": chromium,
				"FP_EXPECT_EVENTS": fmt.Sprint(len(want)),
			}, rec)
			t.Logf("browser.mjs: %s", strings.TrimSpace(out))
			checkBrowserRun(t, h, rec, mode, site.URL, pageURL, version, want, start)
		})
	}
}

func checkBrowserRun(t *testing.T, h *harness, rec *wireRecorder, mode, origin, pageURL, version string, want []browserEvent, start time.Time) {
	// The wire: preflights answered, every POST accepted.
	wire := map[string]wireEvent{} // by messageId
	posts, preflights := 0, 0
	for i, r := range rec.requests() {
		switch r.method {
		case http.MethodOptions:
			preflights++
			if r.status != http.StatusNoContent {
				t.Errorf("preflight %d %s answered %d", i, r.path, r.status)
			}
			continue
		case http.MethodPost:
		default:
			t.Errorf("request %d: %s %s", i, r.method, r.path)
			continue
		}
		posts++
		if r.status != http.StatusOK {
			t.Errorf("POST %s (Content-Type %q) answered %d %s", r.path, r.header.Get("Content-Type"), r.status, r.respBody)
		}
		if r.header.Get("Origin") != origin {
			t.Errorf("POST %s: Origin %q, want the page's %q", r.path, r.header.Get("Origin"), origin)
		}
		var evs []wireEvent
		if r.path == "/v1/b" {
			evs = r.events(t)
		} else {
			var raw map[string]any
			if err := json.Unmarshal(r.body, &raw); err != nil {
				t.Fatalf("POST %s: body is not JSON: %v", r.path, err)
			}
			e := wireEvent{raw: raw, userAgent: r.header.Get("User-Agent")}
			e.messageID = e.str("messageId")
			e.sentAt, _ = time.Parse(time.RFC3339Nano, e.str("sentAt"))
			if want := "/v1/" + e.str("type")[:1]; r.path != want {
				t.Errorf("a %s call went to %s, want %s", e.str("type"), r.path, want)
			}
			evs = []wireEvent{e}
		}
		for _, e := range evs {
			e.raw["_path"] = r.path
			wire[e.messageID] = e
		}
	}
	if mode == "standard" && posts != len(want) || mode == "batching" && (posts < 2 || posts >= len(want)) {
		t.Errorf("%s delivery made %d POSTs for %d events", mode, posts, len(want))
	}
	if preflights == 0 {
		t.Errorf("no CORS preflight seen: analytics-next sends Authorization, which needs one")
	}
	if len(wire) != len(want) {
		t.Fatalf("the browser sent %d distinct events, want %d", len(wire), len(want))
	}

	envs, keys := envelopes(t, h, len(want))
	if len(envs) != len(want) {
		t.Fatalf("%d envelopes for %d events", len(envs), len(want))
	}
	// Order on the topic is per partition; sort by the page's call order
	// (the device clock of each call).
	idx := make([]int, len(envs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		return envs[idx[a]].Event.OriginalTimestamp.AsTime().Before(envs[idx[b]].Event.OriginalTimestamp.AsTime())
	})
	anon := envs[0].Event.AnonymousId
	if !sdkUUIDRE.MatchString(anon) {
		t.Errorf("anonymousId %q is not the UUID analytics-next generates", anon)
	}
	messageIDRE := regexp.MustCompile(`^ajs-next-\d{13}-[0-9a-f-]{36}$`)
	for n, i := range idx {
		env, ev, w := envs[i], envs[i].Event, want[n]
		if w.previousID == anonSentinel {
			w.previousID = anon
		}
		name := fmt.Sprintf("%d_%s", n, w.typ)
		t.Run(name, func(t *testing.T) {
			got := wire[ev.MessageId]
			if got.raw == nil || !messageIDRE.MatchString(ev.MessageId) || env.MessageId != ev.MessageId {
				t.Fatalf("messageId %q (envelope %q) is not one the browser sent", ev.MessageId, env.MessageId)
			}
			if env.WorkspaceId != "acme" || env.SourceId != "browser" {
				t.Errorf("workspace/source %q/%q, want acme/browser", env.WorkspaceId, env.SourceId)
			}
			if eventTypeName(ev.Type) != w.typ || ev.Name != w.name && ev.Event != w.name || ev.Category != w.category || ev.GroupId != w.groupID || ev.PreviousId != w.previousID {
				t.Errorf("event %v %q/%q/%q group %q previous %q, want %s %q/%q group %q previous %q", ev.Type, ev.Event, ev.Name, ev.Category, ev.GroupId, ev.PreviousId, w.typ, w.name, w.category, w.groupID, w.previousID)
			}
			if ev.AnonymousId != anon || ev.UserId != w.user || string(keys[i]) != anon {
				t.Errorf("anonymousId/userId/key %q/%q/%q, want %q/%q/%q", ev.AnonymousId, ev.UserId, keys[i], anon, w.user, anon)
			}
			if w.traits != nil {
				sameJSON(t, "traits", ev.TraitsJson, w.traits)
			}
			var props map[string]any
			if len(ev.PropertiesJson) > 0 {
				if err := json.Unmarshal(ev.PropertiesJson, &props); err != nil {
					t.Errorf("properties: %v", err)
				}
			}
			for k, v := range w.props {
				if !reflect.DeepEqual(props[k], v) {
					t.Errorf("properties[%q] = %#v, want %#v (all: %s)", k, props[k], v, ev.PropertiesJson)
				}
			}
			// What the browser itself contributes.
			sameJSON(t, "context", ev.ContextJson, got.raw["context"])
			ctx := ev.Context
			if ctx.GetLibrary().GetName() != "analytics.js" || ctx.GetLibrary().GetVersion() != "next-"+version {
				t.Errorf("context.library %v, want analytics.js next-%s", ctx.GetLibrary(), version)
			}
			if ctx.GetPage().GetUrl() != pageURL || ctx.GetPage().GetPath() != "/page.html" || ctx.GetPage().GetTitle() != "Firstparty browser test" {
				t.Errorf("context.page %v, want the test page %s", ctx.GetPage(), pageURL)
			}
			if !strings.Contains(ctx.GetUserAgent(), "Chrome/") || env.Collector.GetUserAgent() != got.userAgent || !strings.Contains(got.userAgent, "Chrome/") {
				t.Errorf("user agent: context %q, collector %q, wire %q", ctx.GetUserAgent(), env.Collector.GetUserAgent(), got.userAgent)
			}
			if ctx.GetIp() != "127.0.0.1" || env.Collector.GetIp() != "127.0.0.1" {
				t.Errorf("ip: context %q, collector %q", ctx.GetIp(), env.Collector.GetIp())
			}
			if ep := env.Collector.GetEndpoint(); ep != got.raw["_path"] {
				t.Errorf("collector endpoint %q, want the path the browser posted to, %v", ep, got.raw["_path"])
			}
			// Clocks.
			clock, err := time.Parse(time.RFC3339Nano, got.str("timestamp"))
			if err != nil {
				t.Fatalf("the browser sent no timestamp: %v", err)
			}
			received, ts, now := ev.ReceivedAt.AsTime(), ev.Timestamp.AsTime(), time.Now()
			if received.Before(start.Add(-time.Second)) || received.After(now) {
				t.Errorf("receivedAt %v not during the run (%v..%v)", received, start, now)
			}
			if got.sentAt.IsZero() || !ev.SentAt.AsTime().Equal(got.sentAt) || !ev.OriginalTimestamp.AsTime().Equal(clock) {
				t.Errorf("sentAt %v / originalTimestamp %v, want the browser's %v / %v", ev.SentAt.AsTime(), ev.OriginalTimestamp.AsTime(), got.sentAt, clock)
			}
			if want := received.Add(-got.sentAt.Sub(clock)); !ts.Equal(want) {
				t.Errorf("timestamp %v, want receivedAt - (sentAt - timestamp) = %v", ts, want)
			}
			if d := now.Sub(ts); d < 0 || d > time.Minute {
				t.Errorf("timestamp %v not within a minute before now", ts)
			}
		})
	}
}

// allowBrowserSource adds a source for browserKey whose allowed origin is
// the test page's, and waits until the collector has reloaded it.
func allowBrowserSource(t *testing.T, h *harness, origin string) {
	t.Helper()
	src := testSources + `      - id: browser
        write_keys: [` + browserKey + `]
        allowed_origins: ["` + origin + `"]
`
	if err := os.WriteFile(h.sources, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	// An empty event from that origin is refused as a bad request (400)
	// once the key is known, as an unknown key (401) before. Nothing reaches
	// the raw topic.
	headers := basic(browserKey)
	headers["Origin"] = origin
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.post("/v1/track", []byte(`{}`), headers)
		if r.status == http.StatusBadRequest {
			return
		}
		if r.status != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("waiting for the browser source: %d %s", r.status, r.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pageQuery(kv map[string]string) string {
	v := make(url.Values)
	for k, s := range kv {
		v.Set(k, s)
	}
	return v.Encode()
}
