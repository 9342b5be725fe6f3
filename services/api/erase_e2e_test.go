package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/testinfra"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// TestEraseEndToEnd runs the real collector, validator, stitcher and loader
// binaries against the real servers, sends a person's events, erases the
// person through the API, and checks they are gone from Redis and
// ClickHouse — and that sending their old events again does not bring
// them back.
func TestEraseEndToEnd(t *testing.T) {
	pl := startPipeline(t)
	ws, conn := pl.ws, pl.conn
	batch := `{"batch": [
	  {"type": "identify", "messageId": "e-1", "anonymousId": "dev-1", "userId": "u-erase", "traits": {"email": "erase.me@example.com", "plan": "pro"}, "timestamp": "2026-11-20T10:00:00Z"},
	  {"type": "track", "messageId": "e-2", "anonymousId": "dev-1", "userId": "u-erase", "event": "Order Completed", "properties": {"revenue": 10}, "timestamp": "2026-11-20T10:01:00Z"},
	  {"type": "page", "messageId": "e-3", "anonymousId": "dev-1", "name": "Home", "timestamp": "2026-11-20T10:02:00Z"}
	], "sentAt": "2026-11-20T10:02:00Z"}`
	send := func() { pl.send(batch) }
	send()

	rows := func() uint64 {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM events WHERE workspace_id = ? AND (user_id = 'u-erase' OR anonymous_id = 'dev-1')", ws).Scan(&n)
		if err != nil && !strings.Contains(err.Error(), "doesn't exist") {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, "the person's 3 events in ClickHouse", func() bool { return rows() == 3 })

	rdb := pl.rdb
	graph := identity.New(rdb, identity.DefaultConfig())
	prof, err := graph.Lookup(context.Background(), ws, identity.Identifier{Type: "email", Value: "erase.me@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	srv := pl.server(map[string]access.Key{"fpa_erase_admin_0123456789": access.Full(ws)})
	req, _ := http.NewRequest("POST", srv.URL+"/v1/privacy/erase", strings.NewReader(`{"identifier": "user_id:u-erase", "reason": "ticket 4711"}`))
	req.Header.Set("Authorization", "Bearer fpa_erase_admin_0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep privacy.Report
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Unmarshal(b, &rep) != nil || rep.Status != "completed" || rep.ProfileIDs[0] != prof.ID || len(rep.Suppressed) != 3 {
		t.Fatalf("erase: %d %s", resp.StatusCode, b)
	}

	gone := func(when string) {
		t.Helper()
		for _, id := range prof.Identities {
			if _, err := graph.Lookup(context.Background(), ws, id); err != identity.ErrNotFound {
				t.Fatalf("%s: %s still resolves (%v)", when, id, err)
			}
		}
		if n, _ := rdb.Exists(context.Background(), "fp:{"+ws+"}:p:"+prof.ID, "fp:{"+ws+"}:p:"+prof.ID+":t").Result(); n != 0 {
			t.Fatalf("%s: profile keys still in Redis", when)
		}
		if n := rows(); n != 0 {
			t.Fatalf("%s: %d of the person's events still in ClickHouse", when, n)
		}
		var ids uint64
		_ = conn.QueryRow(context.Background(), "SELECT count() FROM identities WHERE workspace_id = ? AND profile_id = ?", ws, prof.ID).Scan(&ids)
		if ids != 0 {
			t.Fatalf("%s: %d identity rows left", when, ids)
		}
	}
	gone("after erase")

	// Their old events come again (a replay): refused, not resurrected.
	before := testinfra.Count(t, pl.kc, pl.names.Invalid)
	send()
	eventually(t, "the replayed events refused as suppressed", func() bool { return testinfra.Count(t, pl.kc, pl.names.Invalid) >= before+3 })
	pl.drained() // anything that slipped through has landed
	gone("after the replay")
	rejections, _ := testinfra.Read(t, pl.kc, pl.names.Invalid, int(testinfra.Count(t, pl.kc, pl.names.Invalid)), func() *eventv1.Rejection { return &eventv1.Rejection{} })
	suppressed := 0
	for _, r := range rejections {
		for _, v := range r.Violations {
			if v.Reason == eventv1.Reason_REASON_SUPPRESSED {
				suppressed++
			}
		}
	}
	if suppressed < 3 {
		t.Fatalf("%d suppressed rejections, want the 3 replayed events", suppressed)
	}
	if reps, _ := (&privacy.Service{Redis: rdb}).Audit(context.Background(), ws, 10); len(reps) != 1 || reps[0].Reason != "ticket 4711" {
		t.Fatalf("audit log = %+v", reps)
	}
}
