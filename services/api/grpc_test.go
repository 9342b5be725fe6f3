package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

// grpcClient serves a over gRPC on a loopback port, as -grpc-addr does,
// and dials it.
func grpcClient(t *testing.T, a *api) *grpc.ClientConn {
	t.Helper()
	srv := a.grpcServer(newRPCMetrics(nil, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, srv, ln, time.Second) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); cancel(); <-done })
	return conn
}

func withKey(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

// errorOf is the Error a status carries.
func errorOf(err error) *apiv1.Error {
	for _, d := range status.Convert(err).Details() {
		if e, ok := d.(*apiv1.Error); ok {
			return e
		}
	}
	return nil
}

// TestGRPCFace: the same services over gRPC: the key as metadata, the
// same answers, and errors as status codes carrying the Error detail the
// REST face shows.
func TestGRPCFace(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	seedAnn(t, identity.New(rdb, identity.DefaultConfig()), ws)
	a := newAPI(&auth{keys: access.Static(map[string]access.Key{fullKey: access.Full(ws), readKey: access.Grant(ws, access.ProfilesRead),
		otherKey: access.Full(ws + "-other")})}, rdb, nil, "", nil, "")
	conn := grpcClient(t, a)
	profiles, privacy := apiv1.NewProfileServiceClient(conn), apiv1.NewPrivacyServiceClient(conn)

	p, err := profiles.GetProfile(withKey(fullKey), &apiv1.GetProfileRequest{Id: "email:ann@x.io"})
	if err != nil || len(p.Identities) != 3 || p.Traits["plan"].GetStringValue() != "pro" || p.PiiMasked {
		t.Fatalf("GetProfile = %v, %v", p, err)
	}
	masked, err := profiles.GetProfile(withKey(readKey), &apiv1.GetProfileRequest{Id: "user_id:42"})
	if err != nil || masked.ProfileId != p.ProfileId || !masked.PiiMasked || masked.Traits["email"].GetStringValue() != "a***@x.io" {
		t.Fatalf("GetProfile without pii:read = %v, %v", masked, err)
	}

	for _, tt := range []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
		scope string
	}{
		{"no key", func() error {
			_, err := profiles.GetProfile(context.Background(), &apiv1.GetProfileRequest{Id: "user_id:42"})
			return err
		}, codes.Unauthenticated, "", ""},
		{"another workspace", func() error {
			_, err := profiles.GetProfile(withKey(otherKey), &apiv1.GetProfileRequest{Id: "user_id:42"})
			return err
		}, codes.NotFound, "", ""},
		{"bad id", func() error {
			_, err := profiles.GetProfile(withKey(fullKey), &apiv1.GetProfileRequest{Id: "42"})
			return err
		}, codes.InvalidArgument, "id", ""},
		{"missing scope", func() error {
			_, err := privacy.Erase(withKey(readKey), &apiv1.EraseRequest{Identifier: "user_id:42", Reason: "t"})
			return err
		}, codes.PermissionDenied, "", "privacy:erase"},
		{"two keys", func() error {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+fullKey, "authorization", "Bearer "+readKey)
			_, err := profiles.GetProfile(ctx, &apiv1.GetProfileRequest{Id: "user_id:42"})
			return err
		}, codes.Unauthenticated, "", ""},
		{"no events without ClickHouse", func() error {
			_, err := profiles.ListProfileEvents(withKey(fullKey), &apiv1.ListProfileEventsRequest{Id: "user_id:42"})
			return err
		}, codes.Unavailable, "", ""},
		{"limit out of range", func() error {
			_, err := profiles.ListProfileEvents(withKey(fullKey), &apiv1.ListProfileEventsRequest{Id: "user_id:42", Limit: 1001})
			return err
		}, codes.InvalidArgument, "limit", ""},
	} {
		err := tt.call()
		e := errorOf(err)
		if status.Code(err) != tt.code || e == nil || e.Code != codeName(tt.code) || e.Field != tt.field || e.Scope != tt.scope {
			t.Errorf("%s: %v (detail %v); want %v field %q scope %q", tt.name, err, e, tt.code, tt.field, tt.scope)
		}
	}

	// Without a key the call is refused before its message is read (the
	// tap), also for a message of several megabytes.
	big := strings.Repeat("x", 6<<20)
	if _, err := profiles.GetProfile(context.Background(), &apiv1.GetProfileRequest{Id: big}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a keyless call with a 6 MiB message: %v", err)
	}

	// Consent over gRPC, then the export stream: one JSON document in
	// chunks that ends complete.
	if _, err := privacy.RecordConsent(withKey(fullKey), &apiv1.RecordConsentRequest{Identifier: "email:ann@x.io", Categories: map[string]bool{"analytics": true}, Source: "grpc"}); err != nil {
		t.Fatal(err)
	}
	stream, err := privacy.Export(withKey(fullKey), &apiv1.ExportRequest{Identifier: "user_id:42"})
	if err != nil {
		t.Fatal(err)
	}
	var doc []byte
	for {
		m, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Fatalf("export stream: %v", err)
			}
			break
		}
		doc = append(doc, m.Data...)
	}
	var exported struct {
		Complete bool            `json:"complete"`
		Profile  json.RawMessage `json:"profile"`
	}
	if err := json.Unmarshal(doc, &exported); err != nil || !exported.Complete || !strings.Contains(string(exported.Profile), p.ProfileId) {
		t.Fatalf("export over gRPC: %v complete=%v\n%.500s", err, exported.Complete, doc)
	}
}

// TestOpenAPIDocument: the generated document is served, and every path
// in it is routed by the REST face (none is a routing 404 or 405), so the
// document and the gateway come from one definition.
func TestOpenAPIDocument(t *testing.T) {
	kc := testinfra.Kafka(t)
	ws := testinfra.Unique(t)
	srv := serve(t, configAPIFor(t, configStore(t, kc, configTopic(t, kc)), ws))
	code, body := call(t, srv, "GET", "/v1/openapi.json", "", "")
	var doc struct {
		Swagger string                                `json:"swagger"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc.Swagger != "2.0" {
		t.Fatalf("GET /v1/openapi.json: %d %.300s", code, body)
	}
	for _, want := range []string{"/v1/profiles/{id}", "/v1/profiles/{id}/events", "/v1/profiles", "/v1/privacy/erase", "/v1/privacy/export",
		"/v1/privacy/consent", "/v1/privacy/audit", "/v1/workspaces", "/v1/workspaces/{workspace_id}", "/v1/config:apply"} {
		if doc.Paths[want] == nil {
			t.Errorf("the document lacks %s", want)
		}
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	routed := 0
	for path, methods := range doc.Paths {
		for method := range methods {
			// A key that authenticates but holds only profiles:read: every
			// routed call answers (403, 400, 404 "no profile", 200), none
			// changes anything, and only a path the gateway does not know
			// says "no such endpoint".
			concrete := param.ReplaceAllString(path, "x:y")
			code, body := call(t, srv, strings.ToUpper(method), concrete, profReadK, "")
			if strings.Contains(body, "no such endpoint") || code == http.StatusMethodNotAllowed || code == http.StatusUnauthorized {
				t.Errorf("%s %s (from the document) is not routed: %d %s", strings.ToUpper(method), concrete, code, body)
			}
			routed++
		}
	}
	if routed < 25 {
		t.Errorf("the document has %d operations; want every call of the three services", routed)
	}
	if code, body := call(t, srv, "GET", "/v1/nothing-here", profReadK, ""); code != 404 || !strings.Contains(body, `"code":"NOT_FOUND"`) || !strings.Contains(body, "no such endpoint") {
		t.Errorf("unknown path: %d %s", code, body)
	}
}

// TestSearchPageCap: a page answers at most max_results profiles and its
// cursor resumes after them, so every match is found exactly once across
// the pages.
func TestSearchPageCap(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	g := identity.New(rdb, identity.DefaultConfig())
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 25; i++ {
		id := fmt.Sprintf("cap-%02d", i)
		if _, err := g.Apply(context.Background(), identity.Update{Workspace: ws, MessageID: id, Time: at,
			Identifiers: []identity.Identifier{{Type: "user_id", Value: id}}, Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"gold"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	srv := testServer(t, rdb, nil, "", nil, "", map[string]access.Key{fullKey: access.Full(ws)})
	seen, cursor, pages := map[string]int{}, "", 0
	for pages < 100 {
		code, body := call(t, srv, "GET", "/v1/profiles?trait=plan&value=gold&count=5000&max_results=4&cursor="+cursor, fullKey, "")
		page := &apiv1.SearchProfilesResponse{}
		decodeProto(t, body, page)
		if code != 200 || len(page.Profiles) > 4 {
			t.Fatalf("page %d: %d, %d profiles", pages, code, len(page.Profiles))
		}
		for _, p := range page.Profiles {
			seen[p.ProfileId]++
		}
		pages++
		if cursor = page.Cursor; cursor == "" {
			break
		}
	}
	if len(seen) != 25 || pages < 7 {
		t.Fatalf("found %d of 25 in %d pages", len(seen), pages)
	}
	for pid, n := range seen {
		if n != 1 {
			t.Errorf("%s answered %d times", pid, n)
		}
	}
	if code, body := call(t, srv, "GET", "/v1/profiles?trait=plan&value=gold&cursor=0.", fullKey, ""); code != 400 || !strings.Contains(body, `"field":"cursor"`) {
		t.Errorf("bad cursor: %d %s", code, body)
	}

	// Profiles change between pages: one already answered leaves the
	// search, one not yet answered stays; a page goes on after the last
	// profile it answered, so nothing that matched throughout is missed.
	code, body := call(t, srv, "GET", "/v1/profiles?trait=plan&value=gold&max_results=3", fullKey, "")
	first := &apiv1.SearchProfilesResponse{}
	decodeProto(t, body, first)
	if code != 200 || len(first.Profiles) != 3 || !strings.Contains(first.Cursor, ".") {
		t.Fatalf("first page: %d %s", code, body)
	}
	answered := map[string]bool{}
	for _, p := range first.Profiles {
		answered[p.ProfileId] = true
	}
	for _, p := range first.Profiles[:2] {
		if _, err := g.Apply(context.Background(), identity.Update{Workspace: ws, MessageID: "silver-" + p.ProfileId, Time: at.Add(time.Minute),
			Identifiers: []identity.Identifier{{Type: "user_id", Value: p.Identities[0].Value}}, Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"silver"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	for cursor := first.Cursor; cursor != ""; {
		code, body := call(t, srv, "GET", "/v1/profiles?trait=plan&value=gold&max_results=3&cursor="+cursor, fullKey, "")
		page := &apiv1.SearchProfilesResponse{}
		decodeProto(t, body, page)
		if code != 200 {
			t.Fatalf("page: %d %s", code, body)
		}
		for _, p := range page.Profiles {
			answered[p.ProfileId] = true
		}
		cursor = page.Cursor
	}
	if len(answered) != 25 {
		t.Errorf("with changes between pages, %d of the 25 were answered", len(answered))
	}

	// An empty value is a value: it matches an empty string.
	if _, err := g.Apply(context.Background(), identity.Update{Workspace: ws, MessageID: "blank", Time: at,
		Identifiers: []identity.Identifier{{Type: "user_id", Value: "blank"}}, Traits: map[string]json.RawMessage{"plan": json.RawMessage(`""`)}}); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, srv, "GET", "/v1/profiles?trait=plan&value=", fullKey, ""); code != 200 || !strings.Contains(body, `"value":"blank"`) {
		t.Errorf("search for an empty value: %d %s", code, body)
	}
}

// TestConsentBound: an identifier holds at most consent.MaxStoredCategories
// categories; the request that would pass it is a 409 and writes nothing.
func TestConsentBound(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	srv := testServer(t, rdb, nil, "", nil, "", map[string]access.Key{fullKey: access.Full(ws)}, pii.Rule{})
	for n := 0; n < consent.MaxStoredCategories; n += consent.MaxCategories {
		cats := map[string]bool{}
		for i := n; i < n+consent.MaxCategories; i++ {
			cats[fmt.Sprintf("c%03d", i)] = true
		}
		b, _ := json.Marshal(map[string]any{"identifier": "email:many@x.io", "categories": cats, "source": "t"})
		if code, body := call(t, srv, "PUT", "/v1/privacy/consent", fullKey, string(b)); code != 200 {
			t.Fatalf("filling: %d %s", code, body)
		}
	}
	code, body := call(t, srv, "PUT", "/v1/privacy/consent", fullKey, `{"identifier": "email:many@x.io", "categories": {"one-more": true}, "source": "t"}`)
	if code != 409 || !strings.Contains(body, "FAILED_PRECONDITION") || !strings.Contains(body, fmt.Sprint(consent.MaxStoredCategories)) {
		t.Fatalf("past the bound: %d %s", code, body)
	}
}
