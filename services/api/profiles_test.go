package main

import (
	"context"
	"encoding/json"
	"fmt"
	"google.golang.org/protobuf/encoding/protojson"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/testinfra"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

func TestProfileByAnyIdentifier(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	g := identity.New(rdb, identity.DefaultConfig())
	ws, other := testinfra.Unique(t), testinfra.Unique(t)+"-other"
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i, ids := range [][]identity.Identifier{{{Type: "anonymous_id", Value: "a1"}}, {{Type: "user_id", Value: "42"}, {Type: "email", Value: "ann@x.io"}, {Type: "anonymous_id", Value: "a1"}}} {
		if _, err := g.Apply(ctx, identity.Update{Workspace: ws, MessageID: "m" + string(rune('0'+i)), Time: at.Add(time.Duration(i) * time.Minute),
			Identifiers: ids, Traits: map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}, Counter: "identify"}); err != nil {
			t.Fatal(err)
		}
	}
	// The segmenter has put the profile in one segment and taken it out of another.
	pid, _ := g.Lookup(ctx, ws, identity.Identifier{Type: "user_id", Value: "42"})
	st := segstate.New(rdb)
	if err := st.Commit(ctx, ws, segstate.Write{ProfileID: pid.ID, Entries: map[string]*segstate.Entry{
		"vip": {Version: 1, In: true, Since: at.UnixMilli()}, "dormant": {Version: 1, In: false}}}); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, rdb, nil, "", nil, "", map[string]access.Key{"fpa_admin_key_0123456789": access.Full(ws), "fpa_other_key_0123456789": access.Full(other)})
	get := func(path, key string) (int, string) { return call(t, srv, "GET", path, key, "") }
	var first string
	for _, id := range []string{"user_id:42", "email:ann@x.io", "anonymous_id:a1"} {
		code, body := get("/v1/profiles/"+id, "fpa_admin_key_0123456789")
		p := &apiv1.Profile{}
		if code != 200 || protojson.Unmarshal([]byte(body), p) != nil || len(p.Identities) != 3 || p.Traits["plan"].GetStringValue() != "pro" || fmt.Sprint(p.Segments) != "[vip]" {
			t.Fatalf("GET %s = %d %s", id, code, body)
		}
		if first == "" {
			first = p.ProfileId
		} else if p.ProfileId != first {
			t.Fatalf("%s resolves to another profile", id)
		}
		if !p.FirstSeen.AsTime().Equal(at) || !p.LastSeen.AsTime().Equal(at.Add(time.Minute)) || p.Version != 2 || p.Counters["identify"] != 2 {
			t.Errorf("first/last seen = %v / %v, version %d, counters %v", p.FirstSeen, p.LastSeen, p.Version, p.Counters)
		}
	}
	for _, tt := range []struct {
		path, key string
		code      int
		want      string
	}{
		{"/v1/profiles/user_id:43", "fpa_admin_key_0123456789", 404, "no profile"},
		{"/v1/profiles/user_id:42", "", 401, "Bearer"},
		{"/v1/profiles/user_id:42", "wrong_key_0123456789abc", 401, "Bearer"},
		{"/v1/profiles/user_id:42", "fpa_other_key_0123456789", 404, "no profile"}, // another workspace sees nothing
		{"/v1/profiles/42", "fpa_admin_key_0123456789", 400, "<type>:<value>"},
	} {
		if code, body := get(tt.path, tt.key); code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s = %d %s; want %d %q", tt.path, code, body, tt.code, tt.want)
		}
	}
}
