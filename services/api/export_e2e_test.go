package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/history"
)

// TestExportEndToEnd sends a person's events through the real collector,
// validator, stitcher and loader — one of them refused by the tracking
// plan — records their consent, and checks the profile's events endpoint
// and the export: every section holds the person's data, masked for a key
// without pii:read. Erasing them afterwards removes their rejected events
// and consent too.
func TestExportEndToEnd(t *testing.T) {
	pl := startPipeline(t, `{id: web, write_keys: [%s], tracking_plan: {id: shop, version: 1, violations: block, unplanned: allow, events: {"Order Completed": {properties: {type: object, required: [order_id]}}}}}`)
	ws := pl.ws
	pl.send(`{"batch": [
	  {"type": "identify", "messageId": "x-1", "anonymousId": "dev-x", "userId": "u-export", "traits": {"email": "export.me@example.com", "name": "Ex Port", "plan": "pro"}, "timestamp": "2026-11-20T10:00:00Z"},
	  {"type": "track", "messageId": "x-2", "anonymousId": "dev-x", "userId": "u-export", "event": "Order Completed", "properties": {"order_id": "o1", "revenue": 10}, "timestamp": "2026-11-20T10:01:00Z"},
	  {"type": "page", "messageId": "x-3", "anonymousId": "dev-x", "name": "Home", "timestamp": "2026-11-20T10:02:00Z"}
	], "sentAt": "2026-11-20T10:02:00Z"}`)
	pl.send(`{"batch": [{"type": "track", "messageId": "x-bad", "anonymousId": "dev-x", "userId": "u-export", "event": "Order Completed", "properties": {"revenue": 5, "email": "export.me@example.com"}, "timestamp": "2026-11-20T10:03:00Z"}], "sentAt": "2026-11-20T10:03:00Z"}`)
	count := func(q string) uint64 {
		var n uint64
		if err := pl.conn.QueryRow(context.Background(), q, ws).Scan(&n); err != nil && !strings.Contains(err.Error(), "doesn't exist") {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, "3 events and 1 rejection in ClickHouse", func() bool {
		return count("SELECT count() FROM events FINAL WHERE workspace_id = ?") == 3 && count("SELECT count() FROM rejected_events WHERE workspace_id = ? AND user_id = 'u-export'") == 1
	})
	pl.drained()

	const admin, reader = "fpa_export_admin_0123456789", "fpa_export_reader_012345678"
	srv := pl.server(map[string]access.Key{admin: access.Full(ws), reader: access.Grant(ws, access.ProfilesRead, access.PrivacyExport)})
	if code, body := call(t, srv, "PUT", "/v1/privacy/consent", admin, `{"identifier": "email:export.me@example.com", "categories": {"analytics": true}, "source": "test"}`); code != 200 {
		t.Fatalf("consent: %d %s", code, body)
	}

	// Recent events, newest first.
	code, body := call(t, srv, "GET", "/v1/profiles/user_id:u-export/events?limit=2", admin, "")
	var recent struct {
		Events []history.Event `json:"events"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &recent) != nil || len(recent.Events) != 2 || recent.Events[0].MessageID != "x-3" || recent.Events[1].MessageID != "x-2" {
		t.Fatalf("events: %d %s", code, body)
	}
	code, body = call(t, srv, "GET", "/v1/profiles/anonymous_id:dev-x/events", reader, "")
	if code != 200 || strings.Contains(body, "export.me@example.com") || !strings.Contains(body, `"e***@example.com"`) || !strings.Contains(body, `"x-1"`) {
		t.Fatalf("masked events: %d %s", code, body)
	}

	type exportDoc struct {
		Identifier string `json:"identifier"`
		Profile    struct {
			ProfileID string                     `json:"profile_id"`
			Traits    map[string]json.RawMessage `json:"traits"`
		} `json:"profile"`
		Consent        map[string]json.RawMessage `json:"consent"`
		Audit          []json.RawMessage          `json:"audit"`
		Events         []history.Event            `json:"events"`
		ProfileChanges []history.Change           `json:"profile_changes"`
		Memberships    []history.Membership       `json:"segment_memberships"`
		Rejected       []history.Rejection        `json:"rejected_events"`
		Complete       bool                       `json:"complete"`
	}
	export := func(key string) (exportDoc, string) {
		code, body := call(t, srv, "POST", "/v1/privacy/export", key, `{"identifier": "email:export.me@example.com"}`)
		var d exportDoc
		if code != 200 || json.Unmarshal([]byte(body), &d) != nil || !d.Complete {
			t.Fatalf("export: %d %s", code, body)
		}
		return d, body
	}
	d, _ := export(admin)
	if d.Profile.ProfileID == "" || string(d.Profile.Traits["email"]) != `"export.me@example.com"` || len(d.Events) != 3 || d.Events[0].MessageID != "x-1" ||
		len(d.ProfileChanges) == 0 || len(d.Rejected) != 1 || d.Rejected[0].MessageID != "x-bad" || !strings.Contains(string(d.Consent["analytics"]), `"granted":true`) || len(d.Audit) != 1 {
		t.Fatalf("export = %+v", d)
	}
	if d.Memberships == nil {
		t.Fatal("segment_memberships missing")
	}
	dm, raw := export(reader)
	if strings.Contains(raw, "export.me@example.com") || strings.Contains(raw, "Ex Port") || dm.Identifier != "email:e***@example.com" || string(dm.Profile.Traits["name"]) != `"E***t"` || len(dm.Events) != 3 {
		t.Fatalf("masked export shows personal data: %s", raw)
	}

	// Erase reaches the rejection (its raw payload holds the email) and the consent.
	if code, body := call(t, srv, "POST", "/v1/privacy/erase", admin, `{"identifier": "user_id:u-export", "reason": "ticket 5"}`); code != 200 || !strings.Contains(body, "rejected_events") {
		t.Fatalf("erase: %d %s", code, body)
	}
	if n := count("SELECT count() FROM rejected_events WHERE workspace_id = ?"); n != 0 {
		t.Fatalf("%d rejected events left", n)
	}
	if code, body := call(t, srv, "GET", "/v1/privacy/consent?identifier=email:export.me@example.com", admin, ""); code != 200 || !strings.Contains(body, `"categories":{}`) {
		t.Fatalf("consent after erase: %d %s", code, body)
	}
	code, body = call(t, srv, "GET", "/v1/privacy/audit", admin, "")
	for _, typ := range []string{`"type":"erase"`, `"type":"export"`, `"type":"consent.write"`, `"type":"consent.read"`} {
		if code != 200 || !strings.Contains(body, typ) {
			t.Fatalf("audit lacks %s: %s", typ, body)
		}
	}
}
