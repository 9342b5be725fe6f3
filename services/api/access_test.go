package main

import (
	"context"
	"encoding/json"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

const (
	fullKey   = "fpa_full_key_0123456789"
	readKey   = "fpa_read_key_0123456789" // profiles:read only: PII masked
	noneKey   = "fpa_none_key_0123456789" // audit:read only
	otherKey  = "fpa_other_key_012345678" // every scope, another workspace
	writeKeyT = "fpw_web_write_key_0123456789"
)

func seedAnn(t *testing.T, g *identity.Graph, ws string) {
	t.Helper()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	if _, err := g.Apply(context.Background(), identity.Update{Workspace: ws, MessageID: "m1", Time: at,
		Identifiers: []identity.Identifier{{Type: "user_id", Value: "42"}, {Type: "email", Value: "ann@x.io"}, {Type: "phone", Value: "+4915112345678"}},
		Traits: map[string]json.RawMessage{"email": json.RawMessage(`"ann@x.io"`), "name": json.RawMessage(`"Ann Smith"`), "plan": json.RawMessage(`"pro"`),
			"loyalty_id": json.RawMessage(`"LX-99817"`)}}); err != nil {
		t.Fatal(err)
	}
}

// TestAccessControl: every endpoint needs its scope, a missing or unknown
// key and a write key get 401, and another workspace's key finds nothing.
func TestAccessControl(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	seedAnn(t, identity.New(rdb, identity.DefaultConfig()), ws)
	srv := testServer(t, rdb, nil, "", nil, "", map[string]access.Key{
		fullKey: access.Full(ws), readKey: access.Grant(ws, access.ProfilesRead), noneKey: access.Grant(ws, access.AuditRead),
		otherKey: access.Full(ws + "-other")})
	endpoints := []struct {
		method, path, body string
		scope              access.Scope
	}{
		{"GET", "/v1/profiles/user_id:42", "", access.ProfilesRead},
		{"GET", "/v1/profiles/user_id:42/events", "", access.ProfilesRead},
		{"GET", "/v1/profiles?trait=plan&value=pro", "", access.ProfilesRead},
		{"POST", "/v1/profiles/user_id:42/unlink", `{"identifier": "email:ann@x.io", "reason": "x"}`, access.ProfilesWrite},
		{"POST", "/v1/privacy/erase", `{"identifier": "user_id:42", "reason": "x"}`, access.PrivacyErase},
		{"POST", "/v1/privacy/export", `{"identifier": "user_id:42"}`, access.PrivacyExport},
		{"PUT", "/v1/privacy/consent", `{"identifier": "user_id:42", "categories": {"analytics": true}, "source": "t"}`, access.ConsentWrite},
		{"GET", "/v1/privacy/consent?identifier=user_id:42", "", access.ConsentRead},
		{"GET", "/v1/privacy/audit", "", access.AuditRead},
	}
	for _, e := range endpoints {
		for _, tt := range []struct {
			key  string
			code int
			want string
		}{
			{"", 401, "Authorization: Bearer"},
			{"fpa_unknown_key_0123456789", 401, "unknown admin key"},
			{writeKeyT, 401, "write key can only send events"},
		} {
			if code, body := call(t, srv, e.method, e.path, tt.key, e.body); code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("%s %s with key %q: %d %s; want %d %q", e.method, e.path, tt.key, code, body, tt.code, tt.want)
			}
		}
		key := noneKey
		if e.scope == access.AuditRead {
			key = readKey
		}
		if code, body := call(t, srv, e.method, e.path, key, e.body); code != 403 || !strings.Contains(body, "lacks the scope "+string(e.scope)) {
			t.Errorf("%s %s without %s: %d %s", e.method, e.path, e.scope, code, body)
		}
	}
	// Another workspace's full key: the person does not exist there, and
	// the answers are those for a person that never existed.
	for _, tt := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"GET", "/v1/profiles/user_id:42", "", 404, "no profile holds user_id:42"},
		{"GET", "/v1/profiles/email:ann@x.io/events", "", 404, "no profile"},
		{"GET", "/v1/profiles?trait=plan&value=pro", "", 200, `"profiles":[]`},
		{"POST", "/v1/profiles/user_id:42/unlink", `{"identifier": "email:ann@x.io", "reason": "x"}`, 409, "not on one profile"},
		{"GET", "/v1/privacy/consent?identifier=user_id:42", "", 200, `"categories":{}`},
		{"POST", "/v1/privacy/export", `{"identifier": "user_id:42"}`, 200, `"profile":null`},
	} {
		if code, body := call(t, srv, tt.method, tt.path, otherKey, tt.body); code != tt.code || !strings.Contains(body, tt.want) || strings.Contains(body, "Ann Smith") {
			t.Errorf("other workspace %s %s: %d %s; want %d %q", tt.method, tt.path, code, body, tt.code, tt.want)
		}
	}
	if code, body := call(t, srv, "GET", "/v1/profiles/user_id:42", fullKey, ""); code != 200 || !strings.Contains(body, `"ann@x.io"`) {
		t.Errorf("own workspace: %d %s", code, body)
	}
}

// TestMasking: a key without pii:read sees email and phone identifiers,
// personal traits and the workspace's PII paths masked, deterministically;
// one with it sees them in clear.
func TestMasking(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	seedAnn(t, identity.New(rdb, identity.DefaultConfig()), ws)
	srv := testServer(t, rdb, nil, "", nil, "", map[string]access.Key{
		fullKey: access.Full(ws), readKey: access.Grant(ws, access.ProfilesRead, access.ConsentRead, access.ConsentWrite, access.AuditRead)},
		pii.Rule{Path: "traits.loyalty_id", Action: pii.Keep})
	get := func(key string) (*apiv1.Profile, string) {
		code, body := call(t, srv, "GET", "/v1/profiles/email:ann@x.io", key, "")
		p := &apiv1.Profile{}
		if code != 200 || protojson.Unmarshal([]byte(body), p) != nil {
			t.Fatalf("GET with %s: %d %s", key, code, body)
		}
		return p, body
	}
	clear, _ := get(fullKey)
	masked, body := get(readKey)
	again, _ := get(readKey)
	want := map[string]string{"email:ann@x.io": "email:a***@x.io", "phone:+4915112345678": "phone:+***8", "user_id:42": "user_id:42"}
	for i, id := range clear.Identities {
		m := masked.Identities[i]
		if want[id.Type+":"+id.Value] != m.Type+":"+m.Value || !proto.Equal(again.Identities[i], m) {
			t.Errorf("identity %v shown as %v / %v", id, m, again.Identities[i])
		}
	}
	for trait, w := range map[string]string{"email": "a***@x.io", "name": "A***h", "loyalty_id": "L***7", "plan": "pro"} {
		if masked.Traits[trait].GetStringValue() != w {
			t.Errorf("masked trait %s = %s; want %s", trait, masked.Traits[trait], w)
		}
	}
	if !masked.PiiMasked || clear.PiiMasked || clear.Traits["email"].GetStringValue() != "ann@x.io" || clear.Traits["loyalty_id"].GetStringValue() != "LX-99817" {
		t.Errorf("clear = %+v", clear)
	}
	for _, leak := range []string{"ann@x.io", "15112345678", "Ann Smith", "LX-99817"} {
		if strings.Contains(body, leak) {
			t.Errorf("masked profile shows %q: %s", leak, body)
		}
	}
	// Searching by a personal trait would reveal it: it needs pii:read.
	if code, body := call(t, srv, "GET", "/v1/profiles?trait=email&value=ann@x.io", readKey, ""); code != 403 || !strings.Contains(body, "pii:read") {
		t.Errorf("search by email without pii:read: %d %s", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/profiles?trait=email&value=ann@x.io", fullKey, ""); code != 200 || !strings.Contains(body, clear.ProfileId) {
		t.Errorf("search by email with pii:read: %d %s", code, body)
	}
	// Consent answers and the audit log mask the identifier too.
	call(t, srv, "PUT", "/v1/privacy/consent", readKey, `{"identifier": "email:ann@x.io", "categories": {"analytics": true}, "source": "t"}`)
	for _, path := range []string{"/v1/privacy/consent?identifier=email:ann@x.io", "/v1/privacy/audit"} {
		if code, body := call(t, srv, "GET", path, readKey, ""); code != 200 || strings.Contains(body, "ann@x.io") || !strings.Contains(body, "a***@x.io") {
			t.Errorf("GET %s without pii:read: %d %s", path, code, body)
		}
	}
}

// TestConsentAndSearch: consent round trip (newest wins, merged over the
// person's identifiers, shown in the profile), clear 400s for bad bodies,
// and a trait search paged with its cursor.
func TestConsentAndSearch(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	g := identity.New(rdb, identity.DefaultConfig())
	seedAnn(t, g, ws)
	srv := testServer(t, rdb, nil, "", nil, "", map[string]access.Key{fullKey: access.Full(ws)})
	put := func(body string) (int, string) { return call(t, srv, "PUT", "/v1/privacy/consent", fullKey, body) }
	if code, body := put(`{"identifier": "email:ann@x.io", "categories": {"Analytics": true, "marketing": false}, "source": "cmp", "at": "2026-11-23T10:00:00Z"}`); code != 200 || !strings.Contains(body, `"categories":{"analytics":true,"marketing":false}`) {
		t.Fatalf("PUT consent: %d %s", code, body)
	}
	// An older decision for marketing, sent later through another identifier, loses.
	if code, body := call(t, srv, "POST", "/v1/privacy/consent", fullKey, `{"identifier": "user_id:42", "categories": {"marketing": true}, "source": "old-form", "at": "2026-11-01T10:00:00Z"}`); code != 200 || !strings.Contains(body, `"marketing":false`) {
		t.Fatalf("older consent: %d %s", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/privacy/consent?identifier=phone:%2B4915112345678", fullKey, ""); code != 200 || !strings.Contains(body, `"categories":{"analytics":true,"marketing":false}`) {
		t.Fatalf("GET consent via the phone: %d %s", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/profiles/user_id:42", fullKey, ""); code != 200 || !strings.Contains(body, `"consent":{"analytics":{"granted":true`) {
		t.Fatalf("profile without consent: %d %s", code, body)
	}
	for _, tt := range []struct{ body, want string }{
		{`not json`, "not valid"},
		{`{"identifier": "ann", "categories": {"a": true}, "source": "s"}`, "<type>:<value>"},
		{`{"identifier": "email:ann@x.io", "categories": {}, "source": "s"}`, "categories is empty"},
		{`{"identifier": "email:ann@x.io", "categories": {"a": "yes"}, "source": "s"}`, "not valid"},
		{`{"identifier": "email:ann@x.io", "categories": {"a b/c": true}, "source": "s"}`, `category \"a b/c\"`},
		{`{"identifier": "email:ann@x.io", "categories": {"a": true}}`, "source must name"},
		{`{"identifier": "email:ann@x.io", "categories": {"a": true}, "source": "s", "at": "2999-01-01T00:00:00Z"}`, "in the future"},
		{`{"identifier": "email:ann@x.io", "categories": {"a": true}, "source": "s", "colour": 1}`, `unknown field \"colour\"`},
	} {
		if code, body := put(tt.body); code != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("PUT %s: %d %s; want 400 %q", tt.body, code, body, tt.want)
		}
	}
	for _, tt := range []struct{ method, path, body, want string }{
		{"GET", "/v1/privacy/consent", "", "?identifier="},
		{"POST", "/v1/privacy/export", `{"id": "user_id:42"}`, `identifier\": \"<type>:<value>`},
		{"POST", "/v1/privacy/erase", `{"identifier": "user_id:42"}`, "reason"},
		{"GET", "/v1/profiles?trait=plan", "", "?trait=<name>&value=<value>"},
		{"GET", "/v1/profiles?trait=plan&value=pro&cursor=x", "", "cursor"},
		{"GET", "/v1/profiles?trait=plan&value=pro&count=-1", "", "count must be"},
		{"GET", "/v1/profiles?trait=plan&value=pro&count=many", "", "not valid"},
		{"GET", "/v1/profiles?trait=plan&value=pro&max_results=1001", "", "max_results must be"},
		{"GET", "/v1/profiles/user_id:42/events?limit=5000", "", "limit must be a whole number from 1 to 1000"},
		{"GET", "/v1/profiles/42/events", "", "<type>:<value>"},
	} {
		if code, body := call(t, srv, tt.method, tt.path, fullKey, tt.body); code != 400 || !strings.Contains(body, tt.want) {
			t.Errorf("%s %s %s: %d %s; want 400 %q", tt.method, tt.path, tt.body, code, body, tt.want)
		}
	}
	// Search: more profiles, found over several bounded pages.
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 20; i++ {
		plan := map[bool]string{true: "pro", false: "free"}[i%4 == 0]
		if _, err := g.Apply(context.Background(), identity.Update{Workspace: ws, MessageID: "s" + string(rune('a'+i)), Time: at,
			Identifiers: []identity.Identifier{{Type: "user_id", Value: "s" + string(rune('a'+i))}}, Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"` + plan + `"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	found, cursor, pages := map[string]bool{}, "", 0
	for {
		code, body := call(t, srv, "GET", "/v1/profiles?trait=plan&value=pro&count=3&cursor="+cursor, fullKey, "")
		page := &apiv1.SearchProfilesResponse{}
		if code != 200 || protojson.Unmarshal([]byte(body), page) != nil {
			t.Fatalf("search: %d %s", code, body)
		}
		for _, p := range page.Profiles {
			if p.Traits["plan"].GetStringValue() != "pro" {
				t.Fatalf("search returned %s", p.Traits["plan"])
			}
			found[p.ProfileId] = true
		}
		pages++
		if cursor = page.Cursor; cursor == "" {
			break
		}
	}
	if len(found) != 6 || pages < 2 { // Ann and 5 of the 20
		t.Fatalf("search found %d profiles in %d pages; want 6", len(found), pages)
	}
}
