package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
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

// configAPIFor is an API whose control plane is store, with the test's
// keys for workspace ws.
func configAPIFor(t *testing.T, store *controlplane.Store, ws string) *api {
	t.Helper()
	keys := access.Static(map[string]access.Key{
		opKey: access.Grant(access.AllWorkspaces, access.ConfigScopes...), wsKey: access.Full(ws),
		cfgRead: access.Grant(ws, access.ConfigRead), otherWS: access.Full(ws + "-other"), profReadK: access.Grant(ws, access.ProfilesRead),
	})
	au := &auth{keys: keys}
	rdb := redisclient.New(testinfra.Redis(t))
	t.Cleanup(func() { _ = rdb.Close() })
	a := newAPI(au, rdb, nil, "", nil, "")
	a.config = &configAPI{auth: au, store: store}
	return a
}

// configServer serves the REST face of the control plane of store (through
// the gateway, as in production) with the test's keys for workspace ws.
func configServer(t *testing.T, store *controlplane.Store, ws string) *httptest.Server {
	t.Helper()
	return serve(t, configAPIFor(t, store, ws))
}

// ccall is call for the control plane: bodies starting with "{" or "["
// go as JSON, others as YAML; the answer is compacted (protojson's spacing
// varies on purpose) so tests can look for substrings.
func ccall(t *testing.T, srv *httptest.Server, method, path, key, body string) (int, string) {
	t.Helper()
	ct := ""
	if b := strings.TrimSpace(body); b != "" {
		ct = "application/yaml"
		if b[0] == '{' || b[0] == '[' {
			ct = "application/json"
		}
	}
	return callAs(t, srv, method, path, key, ct, body)
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
	if code, body := ccall(t, srv, "PUT", "/v1/workspaces/"+ws, opKey, `{"version": 0, "sources": [{"id": "web", "write_keys": ["fpw_access_test_key_0001"]}]}`); code != 201 {
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
		{"POST", "/v1/config:apply", `{"workspaces": []}`, access.ConfigWrite},
		{"GET", "/v1/workspaces", "", access.ConfigRead},
	} {
		if code, body := ccall(t, srv, e.method, e.path, "", e.body); code != 401 {
			t.Errorf("%s %s without a key: %d %s", e.method, e.path, code, body)
		}
		key := cfgRead
		if e.scope == access.ConfigRead {
			key = profReadK
		}
		if code, body := ccall(t, srv, e.method, e.path, key, e.body); code != 403 || !strings.Contains(body, "lacks the scope "+string(e.scope)) ||
			!strings.Contains(body, `"code":"PERMISSION_DENIED"`) || !strings.Contains(body, `"scope":"`+string(e.scope)+`"`) {
			t.Errorf("%s %s without %s: %d %s", e.method, e.path, e.scope, code, body)
		}
		if strings.HasPrefix(e.path, p) {
			if code, body := ccall(t, srv, e.method, e.path, otherWS, e.body); code != 404 || !strings.Contains(body, "not found") || !strings.Contains(body, `"code":"NOT_FOUND"`) {
				t.Errorf("%s %s with another workspace's key: %d %s", e.method, e.path, code, body)
			}
		}
	}
	if d, _ := store.Get(ws); d.Version != 1 {
		t.Fatalf("refused calls changed the workspace: version %d", d.Version)
	}
	// The listing shows a key its own workspace only.
	if code, body := ccall(t, srv, "GET", "/v1/workspaces", otherWS, ""); code != 200 || strings.Contains(body, `"`+ws+`"`) {
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
		if code, body := ccall(t, srv, tt.method, tt.path, key, tt.body); code != 403 || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s with a workspace key: %d %s", tt.method, tt.path, code, body)
		}
	}
	if code, body := ccall(t, srv, "DELETE", p+"?version=0", opKey, ""); code != 400 || !strings.Contains(body, `"field":"version"`) {
		t.Fatalf("delete at version 0: %d %s", code, body)
	}
	if code, body := ccall(t, srv, "DELETE", p+"?version=5", opKey, ""); code != 409 || !strings.Contains(body, `"current_version":"1"`) || !strings.Contains(body, `"code":"ABORTED"`) {
		t.Fatalf("delete at a stale version: %d %s", code, body)
	}
	if code, body := ccall(t, srv, "DELETE", p+"?version=1", opKey, ""); code != 200 || !strings.Contains(body, `"deleted":"`+ws+`"`) {
		t.Fatalf("operator delete: %d %s", code, body)
	}
	if code, _ := ccall(t, srv, "GET", p, opKey, ""); code != 404 {
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
		{"PUT", p, opKey, `{"version": 0, "name": "Shop", "sources": []}`, 201, []string{`"version":"1"`, `"name":"Shop"`}},
		{"PUT", p, wsKey, `{"version": 0, "sources": []}`, 409, []string{`"current_version":"1"`, "is at version 1", `"code":"ABORTED"`}},
		{"PUT", p, wsKey, `{"version": 1, "sorces": []}`, 400, []string{`unknown field \"sorces\"`, `"code":"INVALID_ARGUMENT"`}},
		{"PUT", p, wsKey, `{"id": "elsewhere", "version": 1}`, 400, []string{`"field":"id"`}},
		{"PUT", p, wsKey, `{"version": 1, "sources": [{"id": "web", "write_keys": ["short"]}]}`, 400, []string{"at least 16 characters"}},
		{"POST", p + "/sources", wsKey, `{"id": "web", "name": "Website", "allowed_origins": ["https://shop.example"]}`, 201, []string{`"write_key":"fpw_`}},
		{"POST", p + "/sources", wsKey, `{"id": "web"}`, 409, []string{"already exists", `"code":"ALREADY_EXISTS"`}},
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
		{"PUT", p + "/sources/web/tracking-plan", wsKey, `{"id": "p", "version": 1, "violations": "block", "events": {"Order Completed": {"properties": {"type": "object", "required": ["order_id"]}}}}`, 200, []string{`"tracking_plan":{"events":{"Order Completed":`, `"violations":"block"`}},
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
		code, body := ccall(t, srv, s.method, s.path, s.key, s.body)
		ok := code == s.code
		for _, w := range s.want {
			ok = ok && strings.Contains(body, w)
		}
		if !ok {
			t.Fatalf("step %d: %s %s %s: %d %s; want %d %q", i, s.method, s.path, s.body, code, body, s.code, s.want)
		}
		if e := jsonOf(t, body); code >= 400 && (e["error"] == nil || e["code"] == nil) {
			t.Fatalf("step %d: error without the error field: %s", i, body)
		}
	}

	// Rotation and revocation, as they reach the registry.
	code, body := ccall(t, srv, "POST", p+"/sources", wsKey, `{"id": "web"}`)
	if code != 201 {
		t.Fatalf("source: %d %s", code, body)
	}
	k1 := jsonOf(t, body)["write_key"].(string)
	code, body = ccall(t, srv, "POST", p+"/sources/web/keys", wsKey, "")
	k2 := jsonOf(t, body)["write_key"].(string)
	if code != 201 || lookup(store, k1) != ws || lookup(store, k2) != ws {
		t.Fatalf("rotate without retiring: %d %s", code, body)
	}
	code, body = ccall(t, srv, "POST", p+"/sources/web/keys", wsKey, fmt.Sprintf(`{"retire": [%q]}`, k1))
	k3 := jsonOf(t, body)["write_key"].(string)
	if code != 201 || lookup(store, k1) != "" || lookup(store, k2) != ws || lookup(store, k3) != ws || jsonOf(t, body)["keys"] != 2.0 || jsonOf(t, body)["retired"] != 1.0 {
		t.Fatalf("rotate retiring one: %d %s", code, body)
	}
	if code, body = ccall(t, srv, "DELETE", p+"/sources/web/keys/"+k2, wsKey, ""); code != 200 || lookup(store, k2) != "" || lookup(store, k3) != ws {
		t.Fatalf("revoke: %d %s", code, body)
	}
	code, body = ccall(t, srv, "POST", p+"/sources/web/keys", wsKey, `{"retire_all": true}`)
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
	if code, body := ccall(t, a, "PUT", "/v1/workspaces/"+ws, opKey, `{"version": 0, "sources": []}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	eventually(t, "b sees the workspace", func() bool { code, _ := ccall(t, b, "GET", "/v1/workspaces/"+ws, wsKey, ""); return code == 200 })
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i, srv := range []*httptest.Server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = ccall(t, srv, "PUT", "/v1/workspaces/"+ws, wsKey, fmt.Sprintf(`{"version": 1, "name": "writer %d", "sources": []}`, i))
		}()
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
		t.Fatalf("concurrent writes answered %v; want one 200 and one 409", codes)
	}
	eventually(t, "both instances agree", func() bool {
		_, x := ccall(t, a, "GET", "/v1/workspaces/"+ws, wsKey, "")
		_, y := ccall(t, b, "GET", "/v1/workspaces/"+ws, wsKey, "")
		return x == y && strings.Contains(x, `"version":"2"`)
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
	code, body := ccall(t, srv, "POST", "/v1/config:apply?dry_run=true", opKey, file)
	if code != 200 || !strings.Contains(body, `"action":"create"`) || !strings.Contains(body, `"dry_run":true`) || len(store.Documents()) != 0 {
		t.Fatalf("dry run: %d %s (%d documents)", code, body, len(store.Documents()))
	}
	if code, body = ccall(t, srv, "POST", "/v1/config:apply", opKey, file); code != 200 || lookup(store, "fpw_apply_test_key_00001") != ws {
		t.Fatalf("apply: %d %s", code, body)
	}
	// A changed segment needs a new version, or its members would be
	// neither decided anew nor backfilled.
	sameVersion := strings.Replace(file, "condition: 'true'", "condition: 'false'", 1)
	code, body = ccall(t, srv, "POST", "/v1/config:apply?dry_run=true", opKey, sameVersion)
	if code != 400 || !strings.Contains(body, `"field":"segments[vip].version"`) || !strings.Contains(body, "give it version 2") {
		t.Fatalf("dry run changing a segment under its version: %d %s", code, body)
	}
	changed := strings.Replace(file, "{id: vip, version: 1, name: VIP, condition: 'true'}", "{id: vip, version: 2, name: VIP, condition: 'false'}", 1)
	code, body = ccall(t, srv, "POST", "/v1/config:apply?dry_run=true", wsKey, changed)
	rep := jsonOf(t, body)
	if code != 200 || !strings.Contains(body, `"changes":["segments[vip]: changed"]`) || len(rep["skipped"].([]any)) != 1 || !strings.Contains(body, "belongs to workspace") {
		t.Fatalf("dry run with a workspace key: %d %s", code, body)
	}
	if code, body = ccall(t, srv, "POST", "/v1/config:apply", wsKey, changed); code != 200 || !strings.Contains(body, `"written":{"`+ws+`":"2"}`) {
		t.Fatalf("apply with a workspace key: %d %s", code, body)
	}
	for _, bad := range []struct{ file, want string }{
		{"workspaces: [{id: " + ws + ", sorces: []}]", "unknown field"},
		{"workspaces: [{id: " + ws + ", sources: [], segments: [{id: x, version: 1, name: X, condition: 'nope('}]}]", "segments[0] (x)"},
		{"workspaces: [{id: " + ws + ", sources: []}, {id: " + ws + ", sources: []}]", "defined twice"},
		{"workspaces: [{id: " + ws + "-x, sources: [{id: web, write_keys: [fpw_apply_test_key_00001]}]}]", "also used by"},
		{"workspaces:\n  - id: " + ws + "\n    sources: []\n    sources: []\n", `key \"sources\" already set`},
	} {
		if code, body := ccall(t, srv, "POST", "/v1/config:apply?dry_run=true", opKey, bad.file); code != 400 || !strings.Contains(body, bad.want) {
			t.Errorf("bad file %s: %d %s", bad.file, code, body)
		}
	}
	if d, _ := store.Get(ws); d.Version != 2 {
		t.Fatalf("bad files changed the workspace: version %d", d.Version)
	}
	// `curl --data-binary @config.yaml` sends no YAML content type: a
	// body that is plainly not JSON is read as YAML.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/config:apply?dry_run=true", strings.NewReader(changed))
	req.Header.Set("Authorization", "Bearer "+opKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(compact(b), `"action":"unchanged"`) {
		t.Errorf("YAML without its content type: %d %s", resp.StatusCode, b)
	}
}

// TestLargeTrackingPlan: a plan is accepted although its proto form (a
// Struct) is several times its JSON; one that would take the workspace
// past what a config-topic record holds is refused, saying so.
func TestLargeTrackingPlan(t *testing.T) {
	kc := testinfra.Kafka(t)
	store := configStore(t, kc, configTopic(t, kc))
	ws := testinfra.Unique(t)
	srv := configServer(t, store, ws)
	if code, body := ccall(t, srv, "PUT", "/v1/workspaces/"+ws, opKey, `{"version": 0, "sources": [{"id": "web", "write_keys": ["fpw_large_plan_key_00001"]}]}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	events := map[string]any{}
	for i := 0; len(events) < 9000; i++ {
		events[fmt.Sprintf("Event %05d", i)] = map[string]any{"properties": map[string]any{"type": "object", "required": []string{"a", "b"},
			"properties": map[string]any{"a": map[string]any{"type": "string"}, "b": map[string]any{"type": "number", "minimum": 0}}}}
	}
	plan, _ := json.Marshal(map[string]any{"id": "big", "version": 1, "events": events})
	if len(plan) < 1<<20 || len(plan) > maxBody {
		t.Fatalf("the plan is %d bytes; want between 1 MiB and the body limit", len(plan))
	}
	if code, body := ccall(t, srv, "PUT", "/v1/workspaces/"+ws+"/sources/web/tracking-plan", wsKey, string(plan)); code != 400 || !strings.Contains(body, "at most 921600") {
		t.Fatalf("PUT a %d-byte plan: %d %.300s", len(plan), code, body)
	}
	for k := range events {
		if len(events) <= 5000 {
			break
		}
		delete(events, k)
	}
	plan, _ = json.Marshal(map[string]any{"id": "big", "version": 1, "events": events})
	if code, body := ccall(t, srv, "PUT", "/v1/workspaces/"+ws+"/sources/web/tracking-plan", wsKey, string(plan)); code != 200 {
		t.Fatalf("PUT a %d-byte plan: %d %.300s", len(plan), code, body)
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
	if code, body := ccall(t, srv, "PUT", "/v1/workspaces/"+pl.ws, opKey, `{"version": 0, "sources": []}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body := ccall(t, srv, "POST", "/v1/workspaces/"+pl.ws+"/sources", wsKey, `{"id": "web"}`)
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
	if code, body := ccall(t, srv, "DELETE", "/v1/workspaces/"+pl.ws+"/sources/web/keys/"+key, wsKey, ""); code != 200 {
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
		if code, body := ccall(t, srv, "PUT", "/"+path, opKey, `{"version": 0, "sources": []}`); code != 201 {
			t.Fatalf("create %s: %d %s", path, code, body)
		}
	}
	junk := strings.Repeat("x", 5<<20)
	for _, e := range []struct{ method, path string }{
		{"PUT", p}, {"POST", p + "/sources"}, {"POST", p + "/sources/web/keys"}, {"PUT", p + "/sources/web/tracking-plan"},
		{"PUT", p + "/sources/web/pii"}, {"PUT", p + "/consent"}, {"PUT", p + "/segments/vip"}, {"PUT", p + "/destinations/crm"},
	} {
		if code, body := ccall(t, srv, e.method, e.path, "", junk); code != 401 {
			t.Errorf("%s %s without a key and a 5 MiB body: %d %.200s", e.method, e.path, code, body)
		}
	}

	// With a key, a body over the bound is refused naming it.
	over := `{"id": "web", "name": "` + strings.Repeat("x", 5<<20) + `"}`
	if code, body := ccall(t, srv, "POST", p+"/sources", wsKey, over); code != 400 || !strings.Contains(body, "over 4194304 bytes") {
		t.Errorf("a 5 MiB source: %d %.300s", code, body)
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
	if code, body := ccall(t, srv, "POST", p+"/sources", wsKey, big); code != 201 {
		t.Fatalf("a %d-byte source: %d %.300s", len(big), code, body)
	}

	// The other workspace's write key.
	code, body := ccall(t, srv, "POST", "/v1/workspaces/"+ws+"-other/sources", opKey, `{"id": "app"}`)
	if code != 201 {
		t.Fatalf("other source: %d %s", code, body)
	}
	theirs := jsonOf(t, body)["write_key"].(string)
	doc := fmt.Sprintf(`{"version": 2, "sources": [{"id": "web", "write_keys": [%q]}]}`, theirs)
	code, body = ccall(t, srv, "PUT", p, wsKey, doc)
	if code != 400 || !strings.Contains(body, "this write key is already in use") || strings.Contains(body, ws+"-other") || strings.Contains(body, `\"app\"`) {
		t.Fatalf("workspace key reusing another workspace's write key: %d %s", code, body)
	}
	if code, body = ccall(t, srv, "PUT", p, opKey, doc); code != 400 || !strings.Contains(body, ws+"-other") {
		t.Fatalf("operator key: %d %s", code, body)
	}
	// pii_secret_env names a server environment variable.
	t.Setenv("FP_TEST_OTHER_PII_SECRET", "0123456789abcdef0123")
	code, body = ccall(t, srv, "PUT", p, wsKey, `{"version": 2, "pii_secret_env": "FP_TEST_OTHER_PII_SECRET", "sources": []}`)
	if code != 403 || !strings.Contains(body, `"field":"pii_secret_env"`) {
		t.Fatalf("workspace key setting pii_secret_env: %d %s", code, body)
	}
}

// TestConfigGRPC: the control plane over gRPC, the key as metadata:
// every kind of call, and errors as codes carrying the Error detail.
func TestConfigGRPC(t *testing.T) {
	kc := testinfra.Kafka(t)
	store := configStore(t, kc, configTopic(t, kc))
	ws := testinfra.Unique(t)
	cl := apiv1.NewConfigServiceClient(grpcClient(t, configAPIFor(t, store, ws)))
	op, own := withKey(opKey), withKey(wsKey)
	t.Setenv("FP_TEST_GRPC_CRM_SECRET", "0123456789abcdef0123")

	doc, err := cl.PutWorkspace(op, &apiv1.PutWorkspaceRequest{WorkspaceId: ws, Document: &apiv1.Document{Name: "Shop"}})
	if err != nil || doc.Version != 1 || doc.Id != ws || doc.UpdatedBy != "api key of *" || doc.UpdatedAt == nil {
		t.Fatalf("PutWorkspace = %v, %v", doc, err)
	}
	_, err = cl.PutWorkspace(own, &apiv1.PutWorkspaceRequest{WorkspaceId: ws, Document: &apiv1.Document{Version: 0}})
	if e := errorOf(err); status.Code(err) != codes.Aborted || e == nil || e.CurrentVersion != 1 || e.Code != "ABORTED" {
		t.Fatalf("stale PutWorkspace: %v (%v)", err, e)
	}
	src, err := cl.CreateSource(own, &apiv1.CreateSourceRequest{WorkspaceId: ws, Source: &apiv1.Source{Id: "web", AllowedOrigins: []string{"https://shop.example"}}})
	if err != nil || !strings.HasPrefix(src.WriteKey, "fpw_") || src.Source.GetWriteKeys()[0] != src.WriteKey || src.Workspace != ws {
		t.Fatalf("CreateSource = %v, %v", src, err)
	}
	if _, err := cl.CreateSource(own, &apiv1.CreateSourceRequest{WorkspaceId: ws, Source: &apiv1.Source{Id: "web"}}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreateSource again: %v", err)
	}
	rot, err := cl.RotateWriteKey(own, &apiv1.RotateWriteKeyRequest{WorkspaceId: ws, SourceId: "web", RetireAll: true})
	if err != nil || rot.Retired != 1 || rot.Keys != 1 || rot.WriteKey == src.WriteKey || lookup(store, src.WriteKey) != "" || lookup(store, rot.WriteKey) != ws {
		t.Fatalf("RotateWriteKey = %v, %v", rot, err)
	}
	rev, err := cl.RevokeWriteKey(own, &apiv1.RevokeWriteKeyRequest{WorkspaceId: ws, SourceId: "web", Key: rot.WriteKey})
	if err != nil || !rev.Revoked || rev.Keys != 0 {
		t.Fatalf("RevokeWriteKey = %v, %v", rev, err)
	}
	plan, _ := structpb.NewStruct(map[string]any{"id": "p", "version": 1, "violations": "block", "events": map[string]any{}})
	if doc, err = cl.PutTrackingPlan(own, &apiv1.PutTrackingPlanRequest{WorkspaceId: ws, SourceId: "web", TrackingPlan: plan}); err != nil ||
		doc.Sources[0].TrackingPlan.Fields["violations"].GetStringValue() != "block" {
		t.Fatalf("PutTrackingPlan = %v, %v", doc, err)
	}
	if doc, err = cl.DeleteTrackingPlan(own, &apiv1.DeleteTrackingPlanRequest{WorkspaceId: ws, SourceId: "web"}); err != nil || doc.Sources[0].TrackingPlan != nil {
		t.Fatalf("DeleteTrackingPlan = %v, %v", doc, err)
	}
	if doc, err = cl.PutPIIRules(own, &apiv1.PutPIIRulesRequest{WorkspaceId: ws, SourceId: "web", Rules: []*apiv1.PIIRule{{Path: "context.ip", Action: "mask"}}}); err != nil || doc.Sources[0].Pii[0].Action != "mask" {
		t.Fatalf("PutPIIRules = %v, %v", doc, err)
	}
	if doc, err = cl.PutConsentPolicy(own, &apiv1.PutConsentPolicyRequest{WorkspaceId: ws, Policy: &apiv1.ConsentPolicy{Required: []string{"analytics"}}}); err != nil || doc.Consent.Required[0] != "analytics" {
		t.Fatalf("PutConsentPolicy = %v, %v", doc, err)
	}
	seg := &apiv1.Segment{Version: 1, Name: "Buyers", Condition: "orders > 0", Aggregates: map[string]*apiv1.Aggregate{
		"orders": {Kind: &apiv1.Aggregate_Count{Count: &apiv1.CountAggregate{Event: "Order Completed", Within: "30d"}}}}}
	if doc, err = cl.PutSegment(own, &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: seg}); err != nil ||
		doc.Segments[0].Id != "buyers" || doc.Segments[0].Aggregates["orders"].GetCount().Within != "720h0m0s" {
		t.Fatalf("PutSegment = %v, %v", doc, err)
	}
	bad := proto.Clone(seg).(*apiv1.Segment)
	bad.Aggregates["orders"].GetCount().Within = "a month"
	_, err = cl.PutSegment(own, &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: bad})
	if e := errorOf(err); status.Code(err) != codes.InvalidArgument || e.GetField() != "segments[buyers]" || !strings.Contains(e.GetError(), `bad duration "a month"`) {
		t.Fatalf("PutSegment with a bad duration: %v (%v)", err, e)
	}
	bad.Aggregates["orders"].GetCount().Within, bad.Condition = "30d", "orders >"
	_, err = cl.PutSegment(own, &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: bad})
	if e := errorOf(err); status.Code(err) != codes.InvalidArgument || e.GetField() != "segments[buyers].condition" {
		t.Fatalf("PutSegment with a bad condition: %v (%v)", err, e)
	}
	// A changed condition under the same version would be neither decided
	// anew nor backfilled: refused. Without a version it gets the next.
	edited := proto.Clone(seg).(*apiv1.Segment)
	edited.Condition = "orders > 1"
	_, err = cl.PutSegment(own, &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: edited})
	if e := errorOf(err); status.Code(err) != codes.InvalidArgument || e.GetField() != "segments[buyers].version" || !strings.Contains(e.GetError(), "give it version 2") {
		t.Fatalf("PutSegment changing the condition under version 1: %v (%v)", err, e)
	}
	edited.Version = 0
	if doc, err = cl.PutSegment(own, &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: edited}); err != nil || doc.Segments[0].Version != 2 || doc.Segments[0].Condition != "orders > 1" {
		t.Fatalf("PutSegment without a version, changed: %v, %v", doc, err)
	}
	if doc, err = cl.PutSegment(own, &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: edited}); err != nil || doc.Segments[0].Version != 2 {
		t.Fatalf("PutSegment without a version, unchanged: %v, %v", doc, err)
	}
	edited.Version = 1
	_, err = cl.PutSegment(own, &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: edited})
	if e := errorOf(err); status.Code(err) != codes.InvalidArgument || !strings.Contains(e.GetError(), "may only go up") {
		t.Fatalf("PutSegment lowering the version: %v (%v)", err, e)
	}
	dest := &apiv1.Destination{Url: "https://crm.example/h", SecretEnv: "FP_TEST_GRPC_CRM_SECRET", Segments: []string{"buyers"}, Timeout: "5s"}
	_, err = cl.PutDestination(own, &apiv1.PutDestinationRequest{WorkspaceId: ws, DestinationId: "crm", Destination: dest})
	if e := errorOf(err); status.Code(err) != codes.PermissionDenied || e.GetField() != "destinations[crm].secret_env" {
		t.Fatalf("PutDestination naming a server secret with a workspace key: %v (%v)", err, e)
	}
	if doc, err = cl.PutDestination(op, &apiv1.PutDestinationRequest{WorkspaceId: ws, DestinationId: "crm", Destination: dest}); err != nil || doc.Destinations[0].Timeout != "5s" {
		t.Fatalf("PutDestination = %v, %v", doc, err)
	}
	if doc, err = cl.DeleteDestination(own, &apiv1.DeleteDestinationRequest{WorkspaceId: ws, DestinationId: "crm"}); err != nil || len(doc.Destinations) != 0 {
		t.Fatalf("DeleteDestination = %v, %v", doc, err)
	}
	if doc, err = cl.DeleteSegment(own, &apiv1.DeleteSegmentRequest{WorkspaceId: ws, SegmentId: "buyers"}); err != nil || len(doc.Segments) != 0 {
		t.Fatalf("DeleteSegment = %v, %v", doc, err)
	}
	if doc, err = cl.DeleteSource(own, &apiv1.DeleteSourceRequest{WorkspaceId: ws, SourceId: "web"}); err != nil || len(doc.Sources) != 0 {
		t.Fatalf("DeleteSource = %v, %v", doc, err)
	}
	rep, err := cl.ApplyConfig(own, &apiv1.ApplyConfigRequest{DryRun: true, Config: &apiv1.Config{Workspaces: []*apiv1.Workspace{{Id: ws, Name: "Shop 2", Consent: &apiv1.ConsentPolicy{Required: []string{"analytics"}}}, {Id: ws + "-x"}}}})
	if err != nil || !rep.DryRun || len(rep.Changes) != 1 || rep.Changes[0].Changes[0] != "name: changed" || len(rep.Skipped) != 1 {
		t.Fatalf("ApplyConfig = %v, %v", rep, err)
	}
	if got, err := cl.GetWorkspace(withKey(cfgRead), &apiv1.GetWorkspaceRequest{WorkspaceId: ws}); err != nil || got.Version != doc.Version || got.Name != "Shop" {
		t.Fatalf("GetWorkspace = %v, %v", got, err)
	}
	if list, err := cl.ListWorkspaces(withKey(otherWS), &apiv1.ListWorkspacesRequest{}); err != nil || len(list.Workspaces) != 0 {
		t.Fatalf("ListWorkspaces with another workspace's key = %v, %v", list, err)
	}

	// Isolation and scopes.
	if _, err := cl.GetWorkspace(withKey(otherWS), &apiv1.GetWorkspaceRequest{WorkspaceId: ws}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetWorkspace with another workspace's key: %v", err)
	}
	if _, err := cl.PutSegment(withKey(otherWS), &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: seg}); status.Code(err) != codes.NotFound {
		t.Fatalf("PutSegment with another workspace's key: %v", err)
	}
	_, err = cl.PutSegment(withKey(cfgRead), &apiv1.PutSegmentRequest{WorkspaceId: ws, SegmentId: "buyers", Segment: seg})
	if e := errorOf(err); status.Code(err) != codes.PermissionDenied || e.GetScope() != string(access.SegmentsWrite) {
		t.Fatalf("PutSegment without segments:write: %v (%v)", err, e)
	}
	if _, err := cl.DeleteWorkspace(own, &apiv1.DeleteWorkspaceRequest{WorkspaceId: ws}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("DeleteWorkspace with a workspace key: %v", err)
	}
	if _, err := cl.ListWorkspaces(context.Background(), &apiv1.ListWorkspacesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListWorkspaces without a key: %v", err)
	}
	v := doc.Version
	if del, err := cl.DeleteWorkspace(op, &apiv1.DeleteWorkspaceRequest{WorkspaceId: ws, Version: &v}); err != nil || del.Deleted != ws {
		t.Fatalf("DeleteWorkspace = %v, %v", del, err)
	}
}
