package validation

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/firstparty/firstparty/pkg/sources"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

const workspaceConfig = `
workspaces:
  - id: shop
    consent: {required: [analytics]}
    pii_secret_env: SHOP_SECRET
    sources:
      - id: web
        write_keys: [wk_shop_web_0123456789]
        default_region: DE
        pii: [{path: traits.email, action: hash}]
        tracking_plan:
          id: shop-web
          version: 4
          violations: block
          unplanned: allow
          events:
            Order Completed:
              properties:
                type: object
                required: [order_id]
                properties: {revenue: {type: number}}
      - id: lenient
        write_keys: [wk_shop_lenient_0123456]
        tracking_plan:
          id: shop-lenient
          version: 1
          violations: allow
          unplanned: allow
          events:
            Order Completed:
              properties: {type: object, required: [order_id]}
  - id: open
    sources:
      - id: api
        write_keys: [wk_open_api_0123456789]
`

func registry(t *testing.T) *sources.Registry {
	t.Helper()
	var c sources.Config
	if err := yaml.UnmarshalStrict([]byte(workspaceConfig), &c); err != nil {
		t.Fatal(err)
	}
	reg, err := sources.BuildWithEnv(c, func(k string) (string, bool) { return "0123456789abcdef-secret", k == "SHOP_SECRET" })
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type ev struct {
	ws, src, typ, name, uid, aid, props, traits string
	consent                                     map[string]bool
}

func (e ev) raw(t *testing.T) []byte {
	typ := map[string]eventv1.EventType{"track": eventv1.EventType_EVENT_TYPE_TRACK, "identify": eventv1.EventType_EVENT_TYPE_IDENTIFY}[e.typ]
	env := &eventv1.Envelope{
		SchemaVersion: 1, MessageId: "m-1", WorkspaceId: e.ws, SourceId: e.src, Raw: []byte(`{"raw":true}`),
		Collector: &eventv1.CollectorMeta{Ip: "203.0.113.9"},
		Event: &eventv1.Event{Type: typ, MessageId: "m-1", Event: e.name, UserId: e.uid, AnonymousId: e.aid,
			PropertiesJson: []byte(e.props), TraitsJson: []byte(e.traits), Context: &eventv1.Context{Consent: e.consent}},
	}
	b, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var granted = map[string]bool{"Analytics": true}

func TestDecide(t *testing.T) {
	reg := registry(t)
	tests := []struct {
		name   string
		value  []byte
		lookup Lookup
		want   string // Decision.Reason()
		check  func(t *testing.T, d Decision)
	}{
		{"valid planned event", ev{ws: "shop", src: "web", typ: "track", name: "Order Completed", uid: "u1", props: `{"order_id":"o1","revenue":5}`, consent: granted}.raw(t), Lookup{}, "valid",
			func(t *testing.T, d Decision) {
				if d.Valid.Validation.GetPlanId() != "shop-web" || d.Valid.Validation.GetPlanVersion() != 4 || len(d.Valid.Validation.Violations) != 0 {
					t.Errorf("validation tag = %v", d.Valid.Validation)
				}
			}},
		{"not an envelope", []byte{0xff, 0x01}, Lookup{}, "format_violation", nil},
		{"suppressed person: stripped", ev{ws: "shop", src: "web", typ: "identify", uid: "u1", traits: `{"email":"A@B.io"}`, consent: granted}.raw(t), Lookup{Suppressed: true}, "suppressed",
			func(t *testing.T, d Decision) {
				e := d.Rejection.Envelope
				if e.Event.UserId != "" || len(e.Event.TraitsJson) != 0 || len(e.Raw) != 0 || e.Collector.GetIp() != "" {
					t.Errorf("PII kept in a suppressed rejection: %v", e)
				}
			}},
		{"consent missing: fail closed, stripped", ev{ws: "shop", src: "web", typ: "track", name: "Order Completed", uid: "u1", props: `{"order_id":"o1"}`}.raw(t), Lookup{}, "consent_denied",
			func(t *testing.T, d Decision) {
				if d.Rejection.Envelope.Event.UserId != "" || !strings.Contains(d.Rejection.Violations[0].Detail, "analytics") {
					t.Errorf("rejection = %v", d.Rejection)
				}
			}},
		{"consent denied", ev{ws: "shop", src: "web", typ: "track", name: "X", uid: "u1", consent: map[string]bool{"analytics": false}}.raw(t), Lookup{}, "consent_denied", nil},
		{"duplicate from another delivery", ev{ws: "shop", src: "web", typ: "track", name: "X", uid: "u1", consent: granted}.raw(t), Lookup{SeenOrigin: "1:5", Origin: "3:9"}, "duplicate", nil},
		{"kafka redelivery of the same message", ev{ws: "shop", src: "web", typ: "track", name: "X", uid: "u1", consent: granted}.raw(t), Lookup{SeenOrigin: "3:9", Origin: "3:9"}, "redelivered", nil},
		{"plan blocks a violation", ev{ws: "shop", src: "web", typ: "track", name: "Order Completed", uid: "u1", props: `{"revenue":"lots"}`, consent: granted}.raw(t), Lookup{}, "schema_violation",
			func(t *testing.T, d Decision) {
				fields := ""
				for _, v := range d.Rejection.Violations {
					fields += v.Field + " "
				}
				if !strings.Contains(fields, "/properties") {
					t.Errorf("violations do not point at the field: %v", d.Rejection.Violations)
				}
			}},
		{"plan allows and tags", ev{ws: "shop", src: "lenient", typ: "track", name: "Order Completed", aid: "a1", props: `{}`, consent: granted}.raw(t), Lookup{}, "valid",
			func(t *testing.T, d Decision) {
				if len(d.Valid.Validation.GetViolations()) == 0 {
					t.Error("tolerated violation not tagged")
				}
			}},
		{"pii hash and standardization", ev{ws: "shop", src: "web", typ: "identify", uid: " u1 ", traits: `{"Email":" Ada@Example.COM "}`, consent: granted}.raw(t), Lookup{}, "valid",
			func(t *testing.T, d Decision) {
				e := d.Valid
				if e.Event.UserId != "u1" {
					t.Errorf("userId not trimmed: %q", e.Event.UserId)
				}
				if !strings.Contains(string(e.Event.TraitsJson), `"email":"hmac:`) || strings.Contains(strings.ToLower(string(e.Event.TraitsJson)), "ada@") {
					t.Errorf("email not hashed under its canonical name: %s", e.Event.TraitsJson)
				}
				if len(e.Raw) != 0 {
					t.Error("raw bytes kept after the PII policy changed the event")
				}
				if e.Collector.GetIp() != "203.0.113.9" {
					t.Error("collector ip changed though no rule named it")
				}
			}},
		{"unknown source passes with defaults", ev{ws: "gone", src: "x", typ: "track", name: "X", uid: "u1"}.raw(t), Lookup{}, "valid", nil},
		{"workspace without consent policy", ev{ws: "open", src: "api", typ: "track", name: "X", uid: "u1"}.raw(t), Lookup{}, "valid", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Prepare(tt.value, reg), tt.lookup, now)
			if got := d.Reason(); got != tt.want {
				t.Fatalf("decision = %s, want %s (%v)", got, tt.want, d.Rejection)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestIdentifiersAreStandardized(t *testing.T) {
	p := Prepare(ev{ws: "shop", src: "web", typ: "identify", uid: "u1", aid: "a1", traits: `{"email":"ADA@Example.com","phone":"0151 23456789"}`}.raw(t), registry(t))
	got := map[string]string{}
	for _, id := range p.Identifiers {
		got[id.Type] = id.Value
	}
	if got["user_id"] != "u1" || got["anonymous_id"] != "a1" || got["email"] != "ada@example.com" || got["phone"] != "+4915123456789" {
		t.Fatalf("identifiers = %v; suppression must match every spelling of an erased email or phone", got)
	}
}
