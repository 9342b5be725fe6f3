package profileview

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
)

func TestRender(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	p := identity.Profile{ID: "p1", Identities: []identity.Identifier{{Type: "email", Value: "ann@x.io"}, {Type: "user_id", Value: "42"}},
		Traits: map[string]json.RawMessage{"email": json.RawMessage(`"ann@x.io"`), "plan": json.RawMessage(`"pro"`)}}
	cs := consent.State{"analytics": {Granted: true, At: at, Source: "cmp", Identifier: "email:ann@x.io"}}
	for _, tt := range []struct {
		name string
		red  *pii.Redaction
		want string
	}{
		{"clear", nil, `{"profile_id":"p1","identities":[{"type":"email","value":"ann@x.io"},{"type":"user_id","value":"42"}],"traits":{"email":"ann@x.io","plan":"pro"},"segments":["vip"],"counters":{},"first_seen":"0001-01-01T00:00:00Z","last_seen":"0001-01-01T00:00:00Z","version":0,"merged_profiles":[],"consent":{"analytics":{"granted":true,"at":"2026-11-23T09:00:00Z","source":"cmp","identifier":"email:ann@x.io"}},"pii_masked":false}`},
		{"masked", pii.NewRedaction(nil), `{"profile_id":"p1","identities":[{"type":"email","value":"a***@x.io"},{"type":"user_id","value":"42"}],"traits":{"email":"a***@x.io","plan":"pro"},"segments":["vip"],"counters":{},"first_seen":"0001-01-01T00:00:00Z","last_seen":"0001-01-01T00:00:00Z","version":0,"merged_profiles":[],"consent":{"analytics":{"granted":true,"at":"2026-11-23T09:00:00Z","source":"cmp","identifier":"email:a***@x.io"}},"pii_masked":true}`},
	} {
		b, _ := json.Marshal(Render(p, []string{"vip"}, cs, tt.red))
		if string(b) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, b, tt.want)
		}
	}
	if string(p.Traits["email"]) != `"ann@x.io"` || cs["analytics"].Identifier != "email:ann@x.io" {
		t.Error("Render modified its input")
	}
}
