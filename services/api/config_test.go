package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

const (
	opKey     = "fpa_operator_key_0123456789"
	wsKey     = "fpa_workspace_key_0123456789"
	cfgRead   = "fpa_config_read_key_0123456"
	otherWS   = "fpa_other_ws_key_0123456789"
	profReadK = "fpa_profiles_read_0123456789"
)

// configTopic is a config topic unique to the test, deleted at its end.
func configTopic(t *testing.T, kc kafkaclient.Config) string {
	t.Helper()
	topic := testinfra.Unique(t) + ".cdp.config"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = kafkaclient.DeleteTopics(ctx, kc, topic)
	})
	return topic
}

// configStore is one API instance's control plane on topic.
func configStore(t *testing.T, kc kafkaclient.Config, topic string) *controlplane.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := controlplane.Open(ctx, kc, controlplane.Options{Source: controlplane.FromTopic, Topic: topic, CatchUp: 20 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done; p.Close() })
	return controlplane.NewStore(r, p)
}

// configServer serves the control plane of store with the test's keys
// for workspace ws.
func configServer(t *testing.T, store *controlplane.Store, ws string) *httptest.Server {
	t.Helper()
	keys := access.Static(map[string]access.Key{
		opKey: access.Grant(access.AllWorkspaces, access.ConfigScopes...), wsKey: access.Full(ws),
		cfgRead: access.Grant(ws, access.ConfigRead), otherWS: access.Full(ws + "-other"), profReadK: access.Grant(ws, access.ProfilesRead),
	})
	mux := http.NewServeMux()
	(&configAPI{auth: &auth{keys: keys}, store: store}).register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func jsonOf(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	return m
}

// TestConfigAccess: every control-plane call needs its scope, another
// workspace's key finds nothing, and only an operator key creates or
// deletes a workspace.
func TestConfigAccess(t *testing.T) {
	kc := testinfra.Kafka(t)
	store := configStore(t, kc, configTopic(t, kc))
	ws := testinfra.Unique(t)
	srv := configServer(t, store, ws)
	if code, body := call(t, srv, "PUT", "/v1/workspaces/"+ws, opKey, `{"version": 0, "sources": [{"id": "web", "write_keys": ["fpw_access_test_key_0001"]}]}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	p := "/v1/workspaces/" + ws
	for _, e := range []struct {
		method, path, body string
		scope              access.Scope
	}{
		{"GET", p, "", access.ConfigRead},
		{"PUT", p, `{"version": 1, "sources": []}`, access.ConfigWrite},
		{"DELETE", p, "", access.ConfigWrite},
		{"POST", p + "/sources", `{"id": "app"}`, access.SourcesWrite},
		{"DELETE", p + "/sources/web", "", access.SourcesWrite},
		{"POST", p + "/sources/web/keys", `{}`, access.SourcesWrite},
		{"DELETE", p + "/sources/web/keys/fpw_access_test_key_0001", "", access.SourcesWrite},
		{"PUT", p + "/sources/web/tracking-plan", `{"id": "p", "version": 1, "events": {}}`, access.ConfigWrite},
		{"PUT", p + "/sources/web/pii", `[{"path": "context.ip", "action": "mask"}]`, access.ConfigWrite},
		{"PUT", p + "/consent", `{"required": ["analytics"]}`, access.ConfigWrite},
		{"PUT", p + "/segments/vip", `{"version": 1, "name": "VIP", "condition": "true"}`, access.SegmentsWrite},
		{"DELETE", p + "/segments/vip", "", access.SegmentsWrite},
		{"PUT", p + "/destinations/crm", `{"url": "https://crm.example/h", "secret_env": "X"}`, access.ConfigWrite},
		{"DELETE", p + "/destinations/crm", "", access.ConfigWrite},
		{"POST", "/v1/config:apply", "workspaces: []", access.ConfigWrite},
	} {
		if code, body := call(t, srv, e.method, e.path, "", e.body); code != 401 {
			t.Errorf("%s %s without a key: %d %s", e.method, e.path, code, body)
		}
		key := cfgRead
		if e.scope == access.ConfigRead {
			key = profReadK
		}
		if code, body := call(t, srv, e.method, e.path, key, e.body); code != 403 || !strings.Contains(body, "lacks the scope "+string(e.scope)) {
			t.Errorf("%s %s without %s: %d %s", e.method, e.path, e.scope, code, body)
		}
		if strings.HasPrefix(e.path, p) {
			if code, body := call(t, srv, e.method, e.path, otherWS, e.body); code != 404 || !strings.Contains(body, "not found") {
				t.Errorf("%s %s with another workspace's key: %d %s", e.method, e.path, code, body)
			}
		}
	}
	if d, _ := store.Get(ws); d.Version != 1 {
		t.Fatalf("refused calls changed the workspace: version %d", d.Version)
	}
	// The listing shows a key its own workspace only.
	if code, body := call(t, srv, "GET", "/v1/workspaces", otherWS, ""); code != 200 || strings.Contains(body, `"`+ws+`"`) {
		t.Errorf("listing with another workspace's key: %d %s", code, body)
	}
	for _, tt := range []struct{ method, path, body, want string }{
		{"PUT", "/v1/workspaces/" + ws + "-new", `{"version": 0, "sources": []}`, "needs an operator key"},
		{"DELETE", p, "", "needs an operator key"},
	} {
		key := wsKey
		if strings.HasSuffix(tt.path, "-new") {
			key = otherWS // no key of its own: 404 would hide it, use the workspace's path with the operator rule
			tt.path = "/v1/workspaces/" + ws + "-other"
		}
		if code, body := call(t, srv, tt.method, tt.path, key, tt.body); code != 403 || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s with a workspace key: %d %s", tt.method, tt.path, code, body)
		}
	}
	if code, body := call(t, srv, "DELETE", p+"?version=1", opKey, ""); code != 200 {
		t.Fatalf("operator delete: %d %s", code, body)
	}
	if code, _ := call(t, srv, "GET", p, opKey, ""); code != 404 {
		t.Fatalf("deleted workspace still answers %d", code)
	}
}

// TestConfigCRUD walks every call with valid and invalid definitions.
func TestConfigCRUD(t *testing.T) {
	kc := testinfra.Kafka(t)
	store := configStore(t, kc, configTopic(t, kc))
	ws := testinfra.Unique(t)
	srv := configServer(t, store, ws)
	p := "/v1/workspaces/" + ws
	t.Setenv("FP_TEST_CRM_SECRET", "0123456789abcdef0123")
	type step struct {
		method, path, key, body string
		code                    int
		want                    []string // substrings of the body
	}
	for i, s := range []step{
		{"PUT", p, opKey, `{"version": 0, "name": "Shop", "sources": []}`, 201, []string{`"version":1`, `"name":"Shop"`}},
		{"PUT", p, wsKey, `{"version": 0, "sources": []}`, 409, []string{`"current_version":1`, "is at version 1"}},
		{"PUT", p, wsKey, `{"version": 1, "sorces": []}`, 400, []string{`unknown field \"sorces\"`}},
		{"PUT", p, wsKey, `{"id": "elsewhere", "version": 1}`, 400, []string{`"field":"id"`}},
		{"PUT", p, wsKey, `{"version": 1, "sources": [{"id": "web", "write_keys": ["short"]}]}`, 400, []string{"at least 16 characters"}},
		{"POST", p + "/sources", wsKey, `{"id": "web", "name": "Website", "allowed_origins": ["https://shop.example"]}`, 201, []string{`"write_key":"fpw_`}},
		{"POST", p + "/sources", wsKey, `{"id": "web"}`, 409, []string{"already exists"}},
		{"POST", p + "/sources", wsKey, `{"id": "app", "write_keys": ["fpw_chosen_key_000000001"]}`, 400, []string{"generated"}},
		{"POST", p + "/sources", wsKey, `{"id": "bad id"}`, 400, []string{"letters, digits"}},
		{"POST", p + "/sources", wsKey, `{"id": "ios", "allowed_origins": ["shop.example"]}`, 400, []string{"must be * or start with http"}},
		{"POST", p + "/sources/nope/keys", wsKey, `{}`, 404, []string{"source nope not found"}},
		{"POST", p + "/sources/web/keys", wsKey, `{"retire": ["fpw_not_a_key_of_it_0000"]}`, 400, []string{`"field":"retire"`}},
		{"DELETE", p + "/sources/web/keys/fpw_not_a_key_of_it_0000", wsKey, "", 404, []string{"not a key of source web"}},
		{"PUT", p + "/segments/vip", wsKey, `{"version": 1, "name": "VIP", "condition": "traits.plan =="}`, 400, []string{`"field":"segments[vip].condition"`, "segment vip: condition"}},
		{"PUT", p + "/segments/vip", wsKey, `{"version": 1, "name": "VIP", "condition": "spend > 1.0", "aggregates": {"spend": {"sum": {"event": "Order Completed"}}}}`, 400, []string{`"field":"segments[vip].aggregates.spend"`, "property is required"}},
		{"PUT", p + "/segments/vip", wsKey, `{"id": "other", "version": 1, "name": "VIP", "condition": "true"}`, 400, []string{`segments[vip].id`}},
		{"PUT", p + "/segments/vip", wsKey, `{"version": 1, "name": "VIP", "condition": "has(traits.plan) && traits.plan == \"pro\""}`, 200, []string{`"id":"vip"`}},
		{"DELETE", p + "/segments/nope", wsKey, "", 404, []string{"segment nope not found"}},
		{"PUT", p + "/sources/web/tracking-plan", wsKey, `{"id": "p", "version": 1, "violations": "explode", "events": {}}`, 400, []string{`"field":"sources[web].tracking_plan"`}},
		{"PUT", p + "/sources/web/tracking-plan", wsKey, `{"id": "p", "version": 1, "violations": "block", "events": {"Order Completed": {"properties": {"type": "object", "required": ["order_id"]}}}}`, 200, []string{`"tracking_plan":{"id":"p"`}},
		{"DELETE", p + "/sources/web/tracking-plan", wsKey, "", 200, nil},
		{"PUT", p + "/sources/web/pii", wsKey, `[{"path": "context.ip", "action": "shred"}]`, 400, []string{`"field":"sources[web].pii"`}},
		{"PUT", p + "/sources/web/pii", wsKey, `[{"path": "context.ip", "action": "mask"}]`, 200, []string{`"pii":[{"path":"context.ip","action":"mask"}]`}},
		{"PUT", p + "/sources/web/pii", wsKey, `[{"path": "traits.email", "action": "hash"}]`, 400, []string{"no pii_secret_env"}},
		{"PUT", p + "/consent", wsKey, `{"required": ["analytics", "Analytics"]}`, 400, []string{`"field":"consent"`}},
		{"PUT", p + "/consent", wsKey, `{"required": ["analytics"]}`, 200, []string{`"consent":{"required":["analytics"]}`}},
		// secret_env names a server environment variable: only an operator
		// key sets it; the workspace key may then change the rest.
		{"PUT", p + "/destinations/crm", wsKey, `{"url": "https://crm.example/h", "secret_env": "FP_TEST_CRM_SECRET", "segments": ["vip"]}`, 403, []string{`"field":"destinations[crm].secret_env"`, "operator key"}},
		{"PUT", p + "/destinations/crm", opKey, `{"url": "https://crm.example/h", "secret_env": "FP_TEST_CRM_SECRET", "segments": ["nope"]}`, 400, []string{`segment \"nope\" is not defined`}},
		{"PUT", p + "/destinations/crm", opKey, `{"url": "https://crm.example/h", "secret_env": "FP_TEST_CRM_SECRET", "segments": ["vip"]}`, 200, []string{`"destinations":[{"id":"crm"`}},
		{"PUT", p + "/destinations/crm", wsKey, `{"url": "https://169.254.169.254/latest/meta-data/", "secret_env": "FP_TEST_CRM_SECRET", "segments": ["vip"]}`, 403, []string{`"field":"destinations[crm].url"`, "internal address"}},
		{"PUT", p + "/destinations/crm", wsKey, `{"url": "http://127.0.0.1:8123/", "secret_env": "FP_TEST_CRM_SECRET", "segments": ["vip"]}`, 403, []string{`"field":"destinations[crm].url"`}},
		{"PUT", p + "/destinations/crm", wsKey, `{"url": "https://crm2.example/h", "secret_env": "FP_TEST_CRM_SECRET", "segments": ["vip"]}`, 200, []string{`"url":"https://crm2.example/h"`}},
		{"PUT", p + "/destinations/ads", wsKey, `{"url": "https://ads.example/h", "secret_env": "FP_OTHER_WS_SECRET"}`, 403, []string{`"field":"destinations[ads].secret_env"`}},
		{"DELETE", p + "/segments/vip", wsKey, "", 400, []string{`segment \"vip\" is not defined`}},
		{"DELETE", p + "/destinations/crm", wsKey, "", 200, nil},
		{"DELETE", p + "/segments/vip", wsKey, "", 200, nil},
		{"DELETE", p + "/sources/web", wsKey, "", 200, []string{`"sources":[]`}},
		{"GET", p, cfgRead, "", 200, []string{`"consent":{"required":["analytics"]}`, `"updated_by":"api key of ` + ws + `"`}},
	} {
		code, body := call(t, srv, s.method, s.path, s.key, s.body)
		ok := code == s.code
		for _, w := range s.want {
			ok = ok && strings.Contains(body, w)
		}
		if !ok {
			t.Fatalf("step %d: %s %s %s: %d %s; want %d %q", i, s.method, s.path, s.body, code, body, s.code, s.want)
		}
		if code >= 400 && jsonOf(t, body)["error"] == nil {
			t.Fatalf("step %d: error without the error field: %s", i, body)
		}
	}

	// Rotation and revocation, as they reach the registry.
	code, body := call(t, srv, "POST", p+"/sources", wsKey, `{"id": "web"}`)
	if code != 201 {
		t.Fatalf("source: %d %s", code, body)
	}
	k1 := jsonOf(t, body)["write_key"].(string)
	code, body = call(t, srv, "POST", p+"/sources/web/keys", wsKey, "")
	k2 := jsonOf(t, body)["write_key"].(string)
	if code != 201 || lookup(store, k1) != ws || lookup(store, k2) != ws {
		t.Fatalf("rotate without retiring: %d %s", code, body)
	}
	code, body = call(t, srv, "POST", p+"/sources/web/keys", wsKey, fmt.Sprintf(`{"retire": [%q]}`, k1))
	k3 := jsonOf(t, body)["write_key"].(string)
	if code != 201 || lookup(store, k1) != "" || lookup(store, k2) != ws || lookup(store, k3) != ws || jsonOf(t, body)["keys"] != 2.0 {
		t.Fatalf("rotate retiring one: %d %s", code, body)
	}
	if code, body = call(t, srv, "DELETE", p+"/sources/web/keys/"+k2, wsKey, ""); code != 200 || lookup(store, k2) != "" || lookup(store, k3) != ws {
		t.Fatalf("revoke: %d %s", code, body)
	}
	code, body = call(t, srv, "POST", p+"/sources/web/keys", wsKey, `{"retire_all": true}`)
	if k4 := jsonOf(t, body)["write_key"].(string); code != 201 || lookup(store, k3) != "" || lookup(store, k4) != ws {
		t.Fatalf("rotate retiring all: %d %s", code, body)
	}
}

func lookup(store *controlplane.Store, key string) string {
	if r, ok := store.Live().Current().Lookup(key); ok {
		return r.WorkspaceID
	}
	return ""
}

// TestConfigConcurrentUpdate: two API instances replacing the same version
// at once: one answers 200, the other 409, and both then agree.
func TestConfigConcurrentUpdate(t *testing.T) {
	kc := testinfra.Kafka(t)
	topic := configTopic(t, kc)
	ws := testinfra.Unique(t)
	a, b := configServer(t, configStore(t, kc, topic), ws), configServer(t, configStore(t, kc, topic), ws)
	if code, body := call(t, a, "PUT", "/v1/workspaces/"+ws, opKey, `{"version": 0, "sources": []}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	eventually(t, "b sees the workspace", func() bool { code, _ := call(t, b, "GET", "/v1/workspaces/"+ws, wsKey, ""); return code == 200 })
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i, srv := range []*httptest.Server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = call(t, srv, "PUT", "/v1/workspaces/"+ws, wsKey, fmt.Sprintf(`{"version": 1, "name": "writer %d", "sources": []}`, i))
		}()
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
		t.Fatalf("concurrent writes answered %v; want one 200 and one 409", codes)
	}
	eventually(t, "both instances agree", func() bool {
		_, x := call(t, a, "GET", "/v1/workspaces/"+ws, wsKey, "")
		_, y := call(t, b, "GET", "/v1/workspaces/"+ws, wsKey, "")
		return x == y && strings.Contains(x, `"version":2`)
	})
}

// TestConfigApply: GitOps — a dry run reports the diff and writes nothing;
// apply writes; a workspace key skips other workspaces; a bad file is 400.
func TestConfigApply(t *testing.T) {
	kc := testinfra.Kafka(t)
	store := configStore(t, kc, configTopic(t, kc))
	ws := testinfra.Unique(t)
	srv := configServer(t, store, ws)
	file := fmt.Sprintf(`workspaces:
  - id: %[1]s
    sources: [{id: web, write_keys: [fpw_apply_test_key_00001]}]
    segments: [{id: vip, version: 1, name: VIP, condition: 'true'}]
  - id: %[1]s-other
    sources: []
`, ws)
	code, body := call(t, srv, "POST", "/v1/config:apply?dry_run=true", opKey, file)
	if code != 200 || !strings.Contains(body, `"action":"create"`) || !strings.Contains(body, `"dry_run":true`) || len(store.Documents()) != 0 {
		t.Fatalf("dry run: %d %s (%d documents)", code, body, len(store.Documents()))
	}
	if code, body = call(t, srv, "POST", "/v1/config:apply", opKey, file); code != 200 || lookup(store, "fpw_apply_test_key_00001") != ws {
		t.Fatalf("apply: %d %s", code, body)
	}
	changed := strings.Replace(file, "condition: 'true'", "condition: 'false'", 1)
	code, body = call(t, srv, "POST", "/v1/config:apply?dry_run=true", wsKey, changed)
	rep := jsonOf(t, body)
	if code != 200 || !strings.Contains(body, `"changes":["segments[vip]: changed"]`) || len(rep["skipped"].([]any)) != 1 || !strings.Contains(body, "belongs to workspace") {
		t.Fatalf("dry run with a workspace key: %d %s", code, body)
	}
	if code, body = call(t, srv, "POST", "/v1/config:apply", wsKey, changed); code != 200 || !strings.Contains(body, `"written":{"`+ws+`":2}`) {
		t.Fatalf("apply with a workspace key: %d %s", code, body)
	}
	for _, bad := range []struct{ file, want string }{
		{"workspaces: [{id: " + ws + ", sorces: []}]", "unknown field"},
		{"workspaces: [{id: " + ws + ", sources: [], segments: [{id: x, version: 1, name: X, condition: 'nope('}]}]", "segments[0] (x)"},
		{"workspaces: [{id: " + ws + ", sources: []}, {id: " + ws + ", sources: []}]", "defined twice"},
		{"workspaces: [{id: " + ws + "-x, sources: [{id: web, write_keys: [fpw_apply_test_key_00001]}]}]", "also used by"},
	} {
		if code, body := call(t, srv, "POST", "/v1/config:apply?dry_run=true", opKey, bad.file); code != 400 || !strings.Contains(body, bad.want) {
			t.Errorf("bad file %s: %d %s", bad.file, code, body)
		}
	}
	if d, _ := store.Get(ws); d.Version != 2 {
		t.Fatalf("bad files changed the workspace: version %d", d.Version)
	}
}

// TestConfigReachesCollector: end to end, a collector reading the config
// topic (not a file) accepts a write key created through the API within
// seconds, and refuses it within seconds of its revocation.
func TestConfigReachesCollector(t *testing.T) {
	kc := testinfra.Kafka(t)
	topic := configTopic(t, kc)
	store := configStore(t, kc, topic) // creates the topic, compacted
	pl := startPipelineWith(t, pipelineOptions{services: []string{"collector"},
		env: []string{"FP_CONFIG_SOURCE=topic", "FP_TOPIC_CONFIG=" + topic}})
	srv := configServer(t, store, pl.ws)
	if code, body := call(t, srv, "PUT", "/v1/workspaces/"+pl.ws, opKey, `{"version": 0, "sources": []}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body := call(t, srv, "POST", "/v1/workspaces/"+pl.ws+"/sources", wsKey, `{"id": "web"}`)
	if code != 201 {
		t.Fatalf("source: %d %s", code, body)
	}
	key := jsonOf(t, body)["write_key"].(string)
	track := func() int {
		req, _ := http.NewRequest("POST", "http://"+pl.ports["collector"]+"/v1/track", strings.NewReader(`{"userId": "u1", "event": "Signed Up"}`))
		req.SetBasicAuth(key, "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	within := func(d time.Duration, what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("not within %v: %s", d, what)
			}
			time.Sleep(50 * time.Millisecond) // the poll interval, not a wait for an outcome
		}
	}
	start := time.Now()
	within(5*time.Second, "the collector accepts the new key", func() bool { return track() == 200 })
	t.Logf("new key accepted after %v", time.Since(start).Round(time.Millisecond))
	if code, body := call(t, srv, "DELETE", "/v1/workspaces/"+pl.ws+"/sources/web/keys/"+key, wsKey, ""); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	start = time.Now()
	within(5*time.Second, "the collector refuses the revoked key", func() bool { return track() == 401 })
	t.Logf("revoked key refused after %v", time.Since(start).Round(time.Millisecond))
}

// TestConfigBodies: the key is checked before the body is read (401 for
// any body without a key), bodies up to 4 MiB are taken, and a workspace
// key is not told which workspace holds a write key it tried to use.
func TestConfigBodies(t *testing.T) {
	kc := testinfra.Kafka(t)
	store := configStore(t, kc, configTopic(t, kc))
	ws := testinfra.Unique(t)
	srv := configServer(t, store, ws)
	p := "/v1/workspaces/" + ws
	for _, path := range []string{p, "/" + ws + "-other"} {
		path = strings.TrimPrefix(path, "/")
		if !strings.HasPrefix(path, "v1/") {
			path = "v1/workspaces/" + path
		}
		if code, body := call(t, srv, "PUT", "/"+path, opKey, `{"version": 0, "sources": []}`); code != 201 {
			t.Fatalf("create %s: %d %s", path, code, body)
		}
	}
	junk := strings.Repeat("x", 5<<20)
	for _, e := range []struct{ method, path string }{
		{"PUT", p}, {"POST", p + "/sources"}, {"POST", p + "/sources/web/keys"}, {"PUT", p + "/sources/web/tracking-plan"},
		{"PUT", p + "/sources/web/pii"}, {"PUT", p + "/consent"}, {"PUT", p + "/segments/vip"}, {"PUT", p + "/destinations/crm"},
	} {
		if code, body := call(t, srv, e.method, e.path, "", junk); code != 401 {
			t.Errorf("%s %s without a key and a 5 MiB body: %d %.200s", e.method, e.path, code, body)
		}
	}

	// A source whose JSON is over 64 KiB (the old, accidental limit).
	origins := make([]string, 4000)
	for i := range origins {
		origins[i] = fmt.Sprintf("%q", fmt.Sprintf("https://shop-%04d.example", i))
	}
	big := `{"id": "web", "allowed_origins": [` + strings.Join(origins, ",") + `]}`
	if len(big) < 64<<10 {
		t.Fatalf("body of %d bytes is not over 64 KiB", len(big))
	}
	if code, body := call(t, srv, "POST", p+"/sources", wsKey, big); code != 201 {
		t.Fatalf("a %d-byte source: %d %.300s", len(big), code, body)
	}

	// The other workspace's write key.
	code, body := call(t, srv, "POST", "/v1/workspaces/"+ws+"-other/sources", opKey, `{"id": "app"}`)
	if code != 201 {
		t.Fatalf("other source: %d %s", code, body)
	}
	theirs := jsonOf(t, body)["write_key"].(string)
	doc := fmt.Sprintf(`{"version": 2, "sources": [{"id": "web", "write_keys": [%q]}]}`, theirs)
	code, body = call(t, srv, "PUT", p, wsKey, doc)
	if code != 400 || !strings.Contains(body, "this write key is already in use") || strings.Contains(body, ws+"-other") || strings.Contains(body, `\"app\"`) {
		t.Fatalf("workspace key reusing another workspace's write key: %d %s", code, body)
	}
	if code, body = call(t, srv, "PUT", p, opKey, doc); code != 400 || !strings.Contains(body, ws+"-other") {
		t.Fatalf("operator key: %d %s", code, body)
	}
	// pii_secret_env names a server environment variable.
	t.Setenv("FP_TEST_OTHER_PII_SECRET", "0123456789abcdef0123")
	code, body = call(t, srv, "PUT", p, wsKey, `{"version": 2, "pii_secret_env": "FP_TEST_OTHER_PII_SECRET", "sources": []}`)
	if code != 403 || !strings.Contains(body, `"field":"pii_secret_env"`) {
		t.Fatalf("workspace key setting pii_secret_env: %d %s", code, body)
	}
}
