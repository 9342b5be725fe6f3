package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

// TestEscapedIdentifiers: an identifier in the path may hold any
// character, escaped: a slash (%2F) stays in its parameter, a plus is a
// plus, and ':' may be escaped too.
func TestEscapedIdentifiers(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws := testinfra.Unique(t)
	g := identity.New(rdb, identity.DefaultConfig())
	if _, err := g.Apply(context.Background(), identity.Update{Workspace: ws, MessageID: "e1", Time: time.Now(),
		Identifiers: []identity.Identifier{{Type: "anonymous_id", Value: "a/b c?d#e%f"}, {Type: "phone", Value: "+4915112345678"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Apply(context.Background(), identity.Update{Workspace: ws, MessageID: "e2", Time: time.Now(),
		Identifiers: []identity.Identifier{{Type: "anonymous_id", Value: "lit%2Fslash"}}}); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, rdb, nil, "", nil, "", map[string]access.Key{fullKey: access.Full(ws)})
	var first string
	for _, p := range []string{"/v1/profiles/anonymous_id:a%2Fb%20c%3Fd%23e%25f", "/v1/profiles/phone:%2B4915112345678", "/v1/profiles/anonymous_id%3Aa%2Fb%20c%3Fd%23e%25f", "/v1/profiles/phone:+4915112345678"} {
		code, body := call(t, srv, "GET", p, fullKey, "")
		prof := &apiv1.Profile{}
		decodeProto(t, body, prof)
		if code != 200 || len(prof.Identities) != 2 || (first != "" && prof.ProfileId != first) {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
		first = prof.ProfileId
	}
	// The text "%2F" itself is sent as %252F and is not a slash.
	if code, body := call(t, srv, "GET", "/v1/profiles/anonymous_id:lit%252Fslash", fullKey, ""); code != 200 || !strings.Contains(body, `"value":"lit%2Fslash"`) {
		t.Errorf("a literal %%2F: %d %s", code, body)
	}
	if code, body := call(t, srv, "GET", "/v1/profiles/anonymous_id:lit%2Fslash", fullKey, ""); code != 404 {
		t.Errorf("an escaped slash found the literal %%2F: %d %s", code, body)
	}
	if code, body := call(t, srv, "POST", "/v1/profiles/anonymous_id:a%2Fb%20c%3Fd%23e%25f/unlink", fullKey, `{"identifier": "phone:+4915112345678", "reason": "test"}`); code != 200 || !strings.Contains(body, `"status":"split"`) {
		t.Errorf("unlink by an escaped id: %d %s", code, body)
	}
}
