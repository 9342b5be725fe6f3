package sources

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const good = `
workspaces:
  - id: acme
    sources:
      - id: web
        write_keys: [wk_web_0123456789abcdef, wk_web_rotated_0123456789]
        allowed_origins: ["https://shop.example"]
        rate_limit: {events_per_second: 100, burst: 200}
      - id: backend
        write_keys: [wk_backend_0123456789ab]
      - id: old
        write_keys: [wk_old_revoked_0123456789]
        disabled: true
  - id: other
    sources:
      - id: web
        write_keys: [wk_other_0123456789abcd]
`

func TestLookup(t *testing.T) {
	reg, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, ws, src string
		ok           bool
	}{
		{"wk_web_0123456789abcdef", "acme", "web", true},
		{"wk_web_rotated_0123456789", "acme", "web", true},
		{"wk_backend_0123456789ab", "acme", "backend", true},
		{"wk_other_0123456789abcd", "other", "web", true},
		{"wk_old_revoked_0123456789", "", "", false}, // disabled source
		{"unknown_key_0123456789", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		res, ok := reg.Lookup(tt.key)
		if ok != tt.ok || ok && (res.WorkspaceID != tt.ws || res.SourceID != tt.src) {
			t.Errorf("Lookup(%q) = %+v, %v", tt.key, res, ok)
		}
	}
	web, _ := reg.Lookup("wk_web_0123456789abcdef")
	if !web.AllowsOrigin("https://shop.example") || !web.AllowsOrigin("") || web.AllowsOrigin("https://evil.example") {
		t.Error("origin allow-list not applied")
	}
	if reg.Sources() != 3 {
		t.Errorf("Sources() = %d, want 3 enabled", reg.Sources())
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"short key":       "workspaces: [{id: a, sources: [{id: s, write_keys: [short]}]}]",
		"shared key":      "workspaces: [{id: a, sources: [{id: s, write_keys: [k_0123456789abcdef]}, {id: t, write_keys: [k_0123456789abcdef]}]}]",
		"bad id":          "workspaces: [{id: 'a b', sources: []}]",
		"dup workspace":   "workspaces: [{id: a, sources: []}, {id: a, sources: []}]",
		"bad rate":        "workspaces: [{id: a, sources: [{id: s, write_keys: [k_0123456789abcdef], rate_limit: {events_per_second: 0, burst: 1}}]}]",
		"bad origin":      "workspaces: [{id: a, sources: [{id: s, write_keys: [k_0123456789abcdef], allowed_origins: [shop.example]}]}]",
		"unknown field":   "workspaces: [{id: a, sauces: []}]",
		"not yaml at all": "{{{",
	}
	for name, in := range tests {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLiveReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sources.yaml")
	write := func(s string) {
		// A later mtime even on coarse filesystems.
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		now := time.Now().Add(time.Duration(len(s)) * time.Millisecond)
		_ = os.Chtimes(path, now, now)
	}
	write(good)
	live, err := NewLive(path)
	if err != nil {
		t.Fatal(err)
	}
	reloads := make(chan error, 10)
	live.OnReload = func(err error) { reloads <- err }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go live.Watch(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))

	// Revoke the backend key.
	write(strings.Replace(good, "wk_backend_0123456789ab", "wk_backend_new_0123456789", 1))
	if err := <-reloads; err != nil {
		t.Fatal(err)
	}
	if _, ok := live.Current().Lookup("wk_backend_0123456789ab"); ok {
		t.Fatal("revoked key still resolves after reload")
	}
	// A broken edit keeps the previous registry.
	write("workspaces: [")
	if err := <-reloads; err == nil {
		t.Fatal("broken file reported as loaded")
	}
	if _, ok := live.Current().Lookup("wk_backend_new_0123456789"); !ok {
		t.Fatal("broken edit replaced the registry in force")
	}
}

func TestValidatorSettings(t *testing.T) {
	cfg := `
workspaces:
  - id: shop
    consent: {required: [analytics]}
    pii_secret_env: SHOP_SECRET
    sources:
      - id: web
        write_keys: [wk_shop_web_0123456789]
        default_region: DE
        pii: [{path: traits.email, action: hash}, {path: context.ip, action: mask}]
        tracking_plan:
          id: shop-web
          version: 2
          violations: block
          unplanned: allow
          events:
            Order Completed:
              properties: {type: object, required: [order_id]}
      - id: retired
        write_keys: [wk_shop_retired_0123456]
        disabled: true
`
	env := func(k string) (string, bool) {
		if k == "SHOP_SECRET" {
			return "s3cret-s3cret-s3cret", true
		}
		return "", false
	}
	var c Config
	if err := yaml.UnmarshalStrict([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	reg, err := BuildWithEnv(c, env)
	if err != nil {
		t.Fatal(err)
	}
	web, ok := reg.Source("shop", "web")
	if !ok || web.Plan == nil || web.Plan.ID != "shop-web" || web.Standardize.DefaultRegion != "DE" || len(web.PII.Rules) != 2 || string(web.PIISecret) != "s3cret-s3cret-s3cret" || len(web.Consent.Required) != 1 {
		t.Fatalf("settings not compiled: %+v", web)
	}
	if _, ok := reg.Source("shop", "retired"); !ok {
		t.Error("a disabled source must still resolve for events already accepted")
	}
	if _, ok := reg.Lookup("wk_shop_retired_0123456"); ok {
		t.Error("a disabled source's key must not authenticate")
	}

	bad := map[string]string{
		"missing secret": strings.Replace(cfg, "SHOP_SECRET", "NOPE", 1),
		"bad plan":       strings.Replace(cfg, "violations: block", "violations: maybe", 1),
		"bad region":     strings.Replace(cfg, "default_region: DE", "default_region: XX", 1),
		"bad pii action": strings.Replace(cfg, "action: mask", "action: scramble", 1),
	}
	for name, in := range bad {
		var c Config
		if err := yaml.UnmarshalStrict([]byte(in), &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := BuildWithEnv(c, env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSegmentsCompiledOnLoad(t *testing.T) {
	reg, err := Parse([]byte(`
workspaces:
  - id: shop
    sources: []
    segments:
      - id: big-spenders
        version: 2
        name: Big spenders
        condition: revenue_90d >= 500.0
        aggregates: {revenue_90d: {sum: {event: "Order Completed", property: revenue, within: 90d}}}
      - {id: pro, version: 1, name: Pro, condition: 'traits.plan == "pro"'}
  - id: empty
    sources: []
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.Workspaces(); len(got) != 2 || got[0] != "shop" || got[1] != "empty" {
		t.Fatalf("Workspaces() = %v", got)
	}
	segs := reg.Segments("shop")
	if len(segs) != 2 || segs[0].ID != "big-spenders" || segs[0].Version != 2 || segs[1].ID != "pro" {
		t.Fatalf("Segments(shop) = %v", segs)
	}
	if len(reg.Segments("empty")) != 0 || len(reg.Segments("nope")) != 0 {
		t.Fatal("segments leaked into other workspaces")
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"bad condition", `{id: x, version: 1, name: X, condition: 'traits.plan ==' }`, `segments[0] (x)`},
		{"undeclared aggregate", `{id: x, version: 1, name: X, condition: 'orders > 1'}`, "orders"},
		{"unknown field", `{id: x, version: 1, name: X, condition: 'true', colour: red}`, "colour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("workspaces: [{id: shop, sources: [], segments: [" + tc.yaml + "]}]"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error naming %q", err, tc.want)
			}
		})
	}
	_, err = Parse([]byte("workspaces: [{id: shop, sources: [], segments: [{id: a, version: 1, name: A, condition: 'true'}, {id: a, version: 2, name: A, condition: 'true'}]}]"))
	if err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Fatalf("duplicate segment id: %v", err)
	}
}

// TestShippedConfigLoads keeps the configuration docker compose mounts valid.
func TestShippedConfigLoads(t *testing.T) {
	reg, err := Load("../../deploy/docker/sources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if reg.Sources() == 0 || len(reg.Segments("demo")) == 0 {
		t.Fatalf("shipped configuration has %d sources and %d segments", reg.Sources(), len(reg.Segments("demo")))
	}
}

func TestDestinations(t *testing.T) {
	env := func(k string) (string, bool) { return "a-secret-of-enough-length", k == "HOOK_SECRET" }
	parse := func(doc string) (*Registry, error) {
		var c Config
		if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
			return nil, err
		}
		return BuildWithEnv(c, env)
	}
	reg, err := parse(`
workspaces:
  - id: shop
    sources: []
    segments: [{id: vip, version: 1, name: VIP, condition: 'true'}]
    destinations:
      - {id: crm, url: "https://crm.example/h", secret_env: HOOK_SECRET, segments: [vip], rate_limit: {per_second: 10, burst: 5}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if d := reg.Destinations("shop"); len(d) != 1 || d[0].ID != "crm" || len(reg.Destinations("other")) != 0 {
		t.Fatalf("Destinations = %v", d)
	}
	for _, tc := range []struct{ name, dest, want string }{
		{"unknown segment", `{id: crm, url: "https://x/h", secret_env: HOOK_SECRET, segments: [nope]}`, `segment "nope" is not defined`},
		{"secret missing", `{id: crm, url: "https://x/h", secret_env: OTHER}`, "OTHER"},
		{"bad url", `{id: crm, url: "x/h", secret_env: HOOK_SECRET}`, "absolute http"},
	} {
		_, err := parse("workspaces: [{id: shop, sources: [], segments: [{id: vip, version: 1, name: VIP, condition: 'true'}], destinations: [" + tc.dest + "]}]")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestIdentitySettings(t *testing.T) {
	reg, err := Parse([]byte(`
workspaces:
  - id: shop
    sources: []
    identity: {limits: {user_id: 2}, priorities: [email, user_id], blocked_values: ["test@example.com"]}
  - id: plain
    sources: []
`))
	if err != nil {
		t.Fatal(err)
	}
	c := reg.Identity("shop")
	if c == nil || c.Limits["user_id"] != 2 || c.DefaultLimit != 5 || c.Priorities[0] != "email" || c.Blocked[0] != "test@example.com" {
		t.Fatalf("Identity(shop) = %+v", c)
	}
	if reg.Identity("plain") != nil {
		t.Fatal("a workspace without settings must use the defaults (nil)")
	}
	// Limits not named keep Segment's defaults.
	reg, err = Parse([]byte(`workspaces: [{id: shop, sources: [], identity: {limits: {email: 2}, default_limit: 3}}]`))
	if c := reg.Identity("shop"); err != nil || c.Limits["user_id"] != 1 || c.Limits["email"] != 2 || c.DefaultLimit != 3 {
		t.Fatalf("Identity(shop) = %+v, %v", c, err)
	}
	for _, tc := range []struct{ doc, want string }{
		{`{limits: {email: 0}}`, `workspace "shop" identity: limit of email is 0`},
		{`{default_limit: 500}`, "default_limit 500: must be 1..50"},
		{`{priorities: [email, email]}`, "priorities: email is listed twice"},
		{`{blocked_values: [""]}`, "blocked_values[0] is empty"},
		{`{limits: {"User ID": 1}}`, `identifier type "User ID"`},
		{`{limit: {email: 1}}`, `unknown field "limit"`},
	} {
		_, err := Parse([]byte(`workspaces: [{id: shop, sources: [], identity: ` + tc.doc + `}]`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestPIIRules(t *testing.T) {
	reg, err := Parse([]byte(`workspaces:
  - id: shop
    sources:
      - {id: web, write_keys: [fpw_web_key_0123456789], pii: [{path: traits.loyalty_id, action: mask}]}
      - {id: app, write_keys: [fpw_app_key_0123456789], pii: [{path: properties.card, action: drop}]}
  - id: other
    sources:
      - {id: web, write_keys: [fpw_oth_key_0123456789], pii: [{path: traits.x, action: mask}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := reg.PIIRules("shop")
	if len(got) != 2 || got[0].Path != "properties.card" || got[1].Path != "traits.loyalty_id" {
		t.Fatalf("PIIRules = %+v", got)
	}
	if reg.PIIRules("nobody") != nil || (*Registry)(nil).PIIRules("shop") != nil {
		t.Fatal("rules for an unknown workspace")
	}
}

// TestDuplicateKeyPublic: the error names the other source; its public
// form, for a workspace's own key, does not.
func TestDuplicateKeyPublic(t *testing.T) {
	_, err := Parse([]byte(`workspaces:
  - id: acme
    sources: [{id: web, write_keys: [fpw_shared_key_0123456789]}]
  - id: rival
    sources: [{id: app, write_keys: [fpw_shared_key_0123456789]}]
`))
	if err == nil || !strings.Contains(err.Error(), `workspace "acme" source "web"`) {
		t.Fatalf("Parse = %v", err)
	}
	wrapped := fmt.Errorf("the configuration does not build: %w", err)
	pub := PublicMessage(wrapped, "rival")
	if strings.Contains(pub, "acme") || !strings.Contains(pub, `workspace "rival" source "app": this write key is already in use`) {
		t.Fatalf("public message: %s", pub)
	}
	pub = PublicMessage(wrapped, "acme")
	if strings.Contains(pub, "rival") || !strings.Contains(pub, `workspace "acme" source "web": this write key is already in use`) {
		t.Fatalf("public message: %s", pub)
	}
}
