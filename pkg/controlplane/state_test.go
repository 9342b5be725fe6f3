package controlplane

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/sources"
)

func ws(t *testing.T, y string) sources.Workspace {
	t.Helper()
	var w sources.Workspace
	if err := yaml.UnmarshalStrict([]byte(y), &w); err != nil {
		t.Fatal(err)
	}
	return w
}

func rec(t *testing.T, id string, version int64, rev, y string) Record {
	t.Helper()
	if y == "" {
		return Record{Workspace: id, Revision: rev}
	}
	d := Document{Workspace: ws(t, y), Version: version}
	raw, err := Encode(d)
	if err != nil {
		t.Fatal(err)
	}
	return Record{Workspace: id, Doc: &d, Revision: rev, Raw: raw}
}

const (
	shopV1 = `{id: shop, sources: [{id: web, write_keys: [fpw_shop_key_00000001]}]}`
	shopV2 = `{id: shop, sources: [{id: web, write_keys: [fpw_shop_key_00000002]}]}`
	// shopBad does not build: the condition does not compile.
	shopBad = `{id: shop, sources: [{id: web, write_keys: [fpw_shop_key_00000003]}], segments: [{id: x, version: 1, name: X, condition: 'traits.plan =='}]}`
	blogV1  = `{id: blog, sources: [{id: app, write_keys: [fpw_blog_key_00000001]}]}`
	// blogSteal uses shop's key: it builds alone but not with shop.
	blogSteal = `{id: blog, sources: [{id: app, write_keys: [fpw_shop_key_00000001]}]}`
)

// keyOwner is the workspace a write key resolves to, "" for none.
func keyOwner(s *State, key string) string {
	if r, ok := s.Registry().Lookup(key); ok {
		return r.WorkspaceID
	}
	return ""
}

func TestStateApply(t *testing.T) {
	type step struct {
		rec  func(t *testing.T) Record
		kind string
	}
	r := func(id string, v int64, rev, y string) func(t *testing.T) Record {
		return func(t *testing.T) Record { return rec(t, id, v, rev, y) }
	}
	for _, tc := range []struct {
		name     string
		steps    []step
		versions map[string]int64
		keys     map[string]string // write key → owner in force
	}{
		{"create then update",
			[]step{{r("shop", 1, "a", shopV1), "applied"}, {r("shop", 2, "b", shopV2), "applied"}},
			map[string]int64{"shop": 2}, map[string]string{"fpw_shop_key_00000001": "", "fpw_shop_key_00000002": "shop"}},
		{"a second write at the same version loses",
			[]step{{r("shop", 1, "a", shopV1), "applied"}, {r("shop", 2, "b", shopV2), "applied"}, {r("shop", 2, "c", shopV1), "stale"}},
			map[string]int64{"shop": 2}, map[string]string{"fpw_shop_key_00000002": "shop", "fpw_shop_key_00000001": ""}},
		{"the winner written again is a duplicate",
			[]step{{r("shop", 1, "a", shopV1), "applied"}, {r("shop", 1, "a", shopV1), "duplicate"}},
			map[string]int64{"shop": 1}, map[string]string{"fpw_shop_key_00000001": "shop"}},
		{"a skipped version is stale",
			[]step{{r("shop", 1, "a", shopV1), "applied"}, {r("shop", 3, "b", shopV2), "stale"}},
			map[string]int64{"shop": 1}, map[string]string{"fpw_shop_key_00000001": "shop"}},
		{"first record after compaction may have any version",
			[]step{{r("shop", 7, "a", shopV1), "applied"}},
			map[string]int64{"shop": 7}, map[string]string{"fpw_shop_key_00000001": "shop"}},
		{"version 0 is invalid",
			[]step{{r("shop", 0, "a", shopV1), "invalid"}},
			map[string]int64{}, map[string]string{"fpw_shop_key_00000001": ""}},
		{"a bad document keeps the last good one in force, and others unharmed",
			[]step{{r("shop", 1, "a", shopV1), "applied"}, {r("blog", 1, "b", blogV1), "applied"}, {r("shop", 2, "c", shopBad), "invalid"}},
			map[string]int64{"shop": 2, "blog": 1}, map[string]string{"fpw_shop_key_00000001": "shop", "fpw_blog_key_00000001": "blog", "fpw_shop_key_00000003": ""}},
		{"a key taken from another workspace does not build",
			[]step{{r("shop", 1, "a", shopV1), "applied"}, {r("blog", 1, "b", blogSteal), "invalid"}},
			map[string]int64{"shop": 1, "blog": 1}, map[string]string{"fpw_shop_key_00000001": "shop"}},
		{"tombstone deletes",
			[]step{{r("shop", 1, "a", shopV1), "applied"}, {r("shop", 0, "b", ""), "deleted"}, {r("shop", 0, "c", ""), "duplicate"}},
			map[string]int64{}, map[string]string{"fpw_shop_key_00000001": ""}},
		{"recreated after delete starts again at 1",
			[]step{{r("shop", 4, "a", shopV1), "applied"}, {r("shop", 0, "b", ""), "deleted"}, {r("shop", 1, "c", shopV2), "applied"}},
			map[string]int64{"shop": 1}, map[string]string{"fpw_shop_key_00000002": "shop"}},
		{"key and id disagree",
			[]step{{func(t *testing.T) Record { x := rec(t, "shop", 1, "a", blogV1); return x }, "invalid"}},
			map[string]int64{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState(nil)
			for i, st := range tc.steps {
				if got := s.Apply(st.rec(t)); got.Kind != st.kind {
					t.Fatalf("step %d: %s (%v), want %s", i, got.Kind, got.Err, st.kind)
				}
			}
			for id, v := range tc.versions {
				if got := s.Version(id); got != v {
					t.Errorf("version of %s = %d, want %d", id, got, v)
				}
			}
			if len(s.Documents()) != len(tc.versions) {
				t.Errorf("%d documents, want %d", len(s.Documents()), len(tc.versions))
			}
			for k, owner := range tc.keys {
				if got := keyOwner(s, k); got != owner {
					t.Errorf("key %s resolves to %q, want %q", k, got, owner)
				}
			}
		})
	}
}

// TestStateLoad: a catch-up builds once, and falls back to a replay that
// keeps each workspace's last good version when the latest does not build.
func TestStateLoad(t *testing.T) {
	builds := 0
	count := func(c sources.Config) (*sources.Registry, error) { builds++; return sources.Build(c) }
	s := NewState(count)
	outs := s.Load([]Record{rec(t, "shop", 1, "a", shopV1), rec(t, "blog", 1, "b", blogV1), rec(t, "shop", 2, "c", shopV2)})
	if builds != 1 || keyOwner(s, "fpw_shop_key_00000002") != "shop" || keyOwner(s, "fpw_blog_key_00000001") != "blog" {
		t.Fatalf("fast path: %d builds, outcomes %v", builds, outs)
	}
	s = NewState(nil)
	outs = s.Load([]Record{rec(t, "shop", 1, "a", shopV1), rec(t, "blog", 1, "b", blogV1), rec(t, "shop", 2, "c", shopBad)})
	kinds := []string{outs[0].Kind, outs[1].Kind, outs[2].Kind}
	if !reflect.DeepEqual(kinds, []string{"applied", "applied", "invalid"}) {
		t.Fatalf("replay outcomes %v", kinds)
	}
	if keyOwner(s, "fpw_shop_key_00000001") != "shop" || keyOwner(s, "fpw_blog_key_00000001") != "blog" || s.Version("shop") != 2 {
		t.Fatalf("last good version not kept: shop v%d", s.Version("shop"))
	}
}

func TestStateExpectAndCheck(t *testing.T) {
	s := NewState(nil)
	s.Apply(rec(t, "shop", 1, "a", shopV1))
	for _, tc := range []struct {
		ws       string
		expected int64
		ok       bool
	}{{"shop", 1, true}, {"shop", 0, false}, {"shop", 2, false}, {"new", 0, true}, {"new", 1, false}} {
		err := s.Expect(tc.ws, tc.expected)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrConflict)) {
			t.Errorf("Expect(%s, %d) = %v", tc.ws, tc.expected, err)
		}
	}
	if err := s.Check([]sources.Workspace{ws(t, blogSteal)}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "also used by") {
		t.Errorf("stolen key: %v", err)
	}
	if err := s.Check([]sources.Workspace{ws(t, blogSteal)}, "shop"); err != nil {
		t.Errorf("stolen key with its owner deleted: %v", err)
	}
	if err := s.Check([]sources.Workspace{ws(t, shopBad)}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "segments[0] (x)") {
		t.Errorf("bad segment: %v", err)
	}
}

func TestDiff(t *testing.T) {
	base := ws(t, `{id: shop, name: Shop, consent: {required: [analytics]}, sources: [{id: web, write_keys: [fpw_shop_key_00000001]}, {id: app, write_keys: [fpw_shop_key_00000009]}], segments: [{id: vip, version: 1, name: VIP, condition: 'true'}]}`)
	for _, tc := range []struct {
		name string
		old  *sources.Workspace
		new  string
		want Change
	}{
		{"absent", nil, shopV1, Change{Workspace: "shop", Action: "create"}},
		{"same", &base, `{id: shop, name: Shop, consent: {required: [analytics]}, sources: [{id: app, write_keys: [fpw_shop_key_00000009]}, {id: web, write_keys: [fpw_shop_key_00000001]}], segments: [{id: vip, version: 1, name: VIP, condition: 'true'}]}`,
			Change{Workspace: "shop", Action: "unchanged"}},
		{"every kind", &base, `{id: shop, name: Shop 2, sources: [{id: web, write_keys: [fpw_shop_key_00000002]}, {id: ios, write_keys: [fpw_shop_key_00000007]}], segments: [{id: vip, version: 1, name: VIP, condition: 'true'}]}`,
			Change{Workspace: "shop", Action: "update", Changes: []string{"consent: changed", "name: changed", "sources[app]: removed", "sources[ios]: added", "sources[web]: changed"}}},
	} {
		if got := Diff(tc.old, ws(t, tc.new)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestDocumentRoundTrip: every section of a workspace survives the topic's
// JSON (durations, raw tracking plans, destinations).
func TestDocumentRoundTrip(t *testing.T) {
	w := ws(t, `
id: shop
consent: {required: [analytics]}
sources:
  - id: web
    write_keys: [fpw_shop_key_00000001]
    rate_limit: {events_per_second: 10, burst: 20}
    pii: [{path: context.ip, action: mask}]
    tracking_plan: {id: p, version: 1, violations: block, unplanned: allow, events: {"Order Completed": {properties: {type: object, required: [order_id]}}}}
segments:
  - {id: cart, version: 1, name: Cart, condition: left, aggregates: {left: {absence: {after: "Product Added", missing: "Order Completed", within: 1h}}}}
destinations:
  - {id: crm, url: "https://crm.example/h", secret_env: HOOK_SECRET, segments: [cart], timeout: 5s}
identity: {limits: {email: 2}, priorities: [user_id, email]}
`)
	raw, err := Encode(Document{Workspace: w, Version: 3})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(d)
	if string(again) != string(raw) || d.Version != 3 {
		t.Fatalf("round trip differs:\n%s\n%s", raw, again)
	}
	t.Setenv("HOOK_SECRET", "0123456789abcdef0123")
	if _, err := sources.Build(sources.Config{Workspaces: []sources.Workspace{d.Workspace}}); err != nil {
		t.Fatalf("decoded document does not build: %v", err)
	}
	if _, err := DecodeStrict(strings.NewReader(`{"id": "shop", "sorces": []}`)); err == nil {
		t.Error("a misspelt field was accepted")
	}
}

// FuzzDecode: whatever a record holds, decoding and applying it never
// panics.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":"shop","version":1,"sources":[{"id":"web","write_keys":["fpw_shop_key_00000001"]}]}`))
	f.Add([]byte(`{"id":"shop","version":1,"segments":[{"id":"x","version":1,"name":"X","condition":"true"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			return
		}
		s := NewState(nil)
		s.Apply(Record{Workspace: d.ID, Doc: &d})
		_, _ = DecodeStrict(strings.NewReader(string(data)))
	})
}

func TestSegmentField(t *testing.T) {
	for _, tc := range []struct{ def, want string }{
		{`{id: vip, version: 1, name: V, condition: 'traits.plan =='}`, "segments[vip].condition"},
		{`{id: vip, version: 0, name: V, condition: 'true'}`, "segments[vip].version"},
		{`{id: vip, version: 1, name: V, condition: 'views > 1', aggregates: {views: {count: {event: X, within: 1s}}}}`, "segments[vip].aggregates.views"},
		{`{id: vip, version: 1, name: V, condition: 'x', aggregates: {"true": {count: {event: X}}}}`, "segments[vip].aggregates.true"},
		{`{id: "Bad Id", version: 1, name: V, condition: 'true'}`, "segments[Bad Id].id"},
	} {
		var d segments.Definition
		if err := yaml.UnmarshalStrict([]byte(tc.def), &d); err != nil {
			t.Fatal(err)
		}
		_, err := segments.CompileDefinition(d)
		if err == nil {
			t.Fatalf("%s compiled", tc.def)
		}
		if got := SegmentField(d.ID, err); got != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.def, got, err, tc.want)
		}
	}
}
