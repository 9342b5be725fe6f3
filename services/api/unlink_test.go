package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

func TestUnlinkEndpoint(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	g := identity.New(rdb, identity.DefaultConfig())
	ws, ctx := testinfra.Unique(t), context.Background()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i, ids := range [][]identity.Identifier{{{Type: "email", Value: "ann@x.io"}}, {{Type: "anonymous_id", Value: "kiosk"}}, {{Type: "email", Value: "ann@x.io"}, {Type: "anonymous_id", Value: "kiosk"}}} {
		if _, err := g.Apply(ctx, identity.Update{Workspace: ws, MessageID: string(rune('a' + i)), Time: at, Identifiers: ids}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := testServer(t, rdb, nil, "", p, names.Profiles, map[string]access.Key{"fpa_admin_key_0123456789": access.Full(ws), "fpa_other_key_0123456789": access.Full(ws + "-other")})
	post := func(key, path, body string) (int, string) { return call(t, srv, "POST", path, key, body) }
	const ok = `{"identifier": "anonymous_id:kiosk", "reason": "shared kiosk"}`
	if code, body := post("fpa_other_key_0123456789", "/v1/profiles/email:ann@x.io/unlink", ok); code != 409 {
		t.Fatalf("another workspace's key: %d %s", code, body) // it sees no such profile
	}
	for _, bad := range []string{`{}`, `{"identifier": "kiosk", "reason": "x"}`, `{"identifier": "anonymous_id:kiosk"}`, `not json`} {
		if code, body := post("fpa_admin_key_0123456789", "/v1/profiles/email:ann@x.io/unlink", bad); code != 400 {
			t.Fatalf("%s: %d %s", bad, code, body)
		}
	}
	code, body := post("fpa_admin_key_0123456789", "/v1/profiles/email:ann@x.io/unlink", ok)
	var out struct {
		Status string `json:"status"`
		Pieces []struct {
			ProfileID string `json:"profile_id"`
		} `json:"pieces"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &out) != nil || out.Status != "split" || len(out.Pieces) != 1 {
		t.Fatalf("unlink: %d %s", code, body)
	}
	changes, _ := testinfra.Read(t, kc, names.Profiles, 2, func() *profilev1.ProfileChange { return &profilev1.ProfileChange{} })
	for _, c := range changes {
		if c.Kind != profilev1.ChangeKind_CHANGE_KIND_SPLIT || c.WorkspaceId != ws {
			t.Fatalf("change = %v", c)
		}
	}
	if code, _ := post("fpa_admin_key_0123456789", "/v1/profiles/email:ann@x.io/unlink", ok); code != 409 {
		t.Fatalf("second unlink: %d", code)
	}
}
