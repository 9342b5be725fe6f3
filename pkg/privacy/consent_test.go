package privacy

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

// TestConsentAndExportRedis: consent recorded against an email before any
// event holds for the profile the email later joins; reads and writes are
// audited; an export (without ClickHouse) carries profile, consent and the
// audit entries, masked for a reader without pii:read.
func TestConsentAndExportRedis(t *testing.T) {
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	ws, ctx := testinfra.Unique(t), context.Background()
	g := identity.New(rdb, identity.DefaultConfig())
	s := &Service{Graph: g, Redis: rdb, Consent: consent.NewStore(rdb)}
	email := identity.Identifier{Type: "email", Value: "ann@x.io"}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	u, _ := consent.Update{Categories: map[string]bool{"analytics": true, "marketing": false}, Source: "signup-form", At: at}.Normalize()
	ans, err := s.RecordConsent(ctx, ws, email, u)
	if err != nil || ans.ProfileID != "" || len(ans.Applied) != 2 || !ans.Consent["analytics"].Granted {
		t.Fatalf("record before any profile: %+v %v", ans, err)
	}
	if _, err := g.Apply(ctx, identity.Update{Workspace: ws, MessageID: "m1", Time: at, Identifiers: []identity.Identifier{{Type: "user_id", Value: "42"}, email},
		Traits: map[string]json.RawMessage{"email": json.RawMessage(`"ann@x.io"`), "plan": json.RawMessage(`"pro"`)}}); err != nil {
		t.Fatal(err)
	}
	u2, _ := consent.Update{Categories: map[string]bool{"marketing": true}, Source: "cmp", At: at.Add(time.Hour)}.Normalize()
	if _, err := s.RecordConsent(ctx, ws, identity.Identifier{Type: "user_id", Value: "42"}, u2); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadConsent(ctx, ws, email)
	if err != nil || got.ProfileID == "" || !got.Consent["analytics"].Granted || !got.Consent["marketing"].Granted || got.Consent["marketing"].Source != "cmp" {
		t.Fatalf("read via the email: %+v %v", got, err)
	}
	for i, red := range []*pii.Redaction{nil, pii.NewRedaction(nil)} {
		wantAudit := 3 + i // the first export is about the person too
		var buf bytes.Buffer
		rep, err := s.Export(ctx, ws, email, &buf, red)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Identifier string `json:"identifier"`
			Profile    struct {
				Traits map[string]any `json:"traits"`
			} `json:"profile"`
			Consent  map[string]consent.Decision `json:"consent"`
			Audit    []Report                    `json:"audit"`
			Events   []any                       `json:"events"`
			Complete bool                        `json:"complete"`
		}
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("export is not one JSON document: %v\n%s", err, buf.String())
		}
		wantEmail := "ann@x.io"
		if red != nil {
			wantEmail = "a***@x.io"
		}
		if !doc.Complete || doc.Identifier != "email:"+wantEmail || doc.Profile.Traits["email"] != wantEmail || len(doc.Consent) != 2 || len(doc.Audit) != wantAudit || doc.Events == nil {
			t.Fatalf("export (masked %v): %s", red != nil, buf.String())
		}
		if red != nil && strings.Contains(buf.String(), "ann@x.io") {
			t.Fatalf("masked export shows the email: %s", buf.String())
		}
		if rep.Type != TypeExport || rep.Rows["audit"] != int64(wantAudit) {
			t.Fatalf("report = %+v", rep)
		}
	}
	audit, _ := s.Audit(ctx, ws, 10)
	var types []string
	for _, r := range audit {
		types = append(types, r.Type)
	}
	if strings.Join(types, " ") != "export export consent.read consent.write consent.write" {
		t.Fatalf("audit types = %v", types)
	}
}
