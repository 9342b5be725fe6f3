package validation

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/firstparty/firstparty/pkg/sources"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// benchConfig is a workspace whose source has a 20-event ecommerce and
// content tracking plan, PII rules and a consent policy: the full cost of
// the validator's rules per event.
func benchConfig(b *testing.B) *sources.Registry {
	events := ""
	names := []string{"Products Searched", "Product List Viewed", "Product Clicked", "Product Viewed", "Product Added", "Product Removed",
		"Cart Viewed", "Checkout Started", "Checkout Step Viewed", "Checkout Step Completed", "Payment Info Entered", "Order Completed",
		"Order Updated", "Order Refunded", "Order Cancelled", "Coupon Applied", "Product Shared", "Product Reviewed", "Video Playback Started", "Content Viewed"}
	for _, n := range names {
		events += fmt.Sprintf(`
            %q:
              properties:
                type: object
                required: [product_id]
                properties:
                  product_id: {type: string, minLength: 1}
                  price: {type: number, minimum: 0}
                  quantity: {type: integer, minimum: 1}
                  category: {type: string, enum: [audio, video, books, toys]}
                  currency: {type: string, pattern: "^[A-Z]{3}$"}`, n)
	}
	cfg := `
workspaces:
  - id: shop
    consent: {required: [analytics]}
    pii_secret_env: SHOP_SECRET
    sources:
      - id: web
        write_keys: [wk_shop_web_0123456789]
        default_region: DE
        pii: [{path: traits.email, action: hash}, {path: context.ip, action: mask}]
        tracking_plan:
          id: shop
          version: 1
          violations: allow
          unplanned: allow
          events:` + events + "\n"
	var c sources.Config
	if err := yaml.UnmarshalStrict([]byte(cfg), &c); err != nil {
		b.Fatal(err)
	}
	reg, err := sources.BuildWithEnv(c, func(string) (string, bool) { return "0123456789abcdef-secret", true })
	if err != nil {
		b.Fatal(err)
	}
	return reg
}

func benchEvents(b *testing.B) [][]byte {
	var out [][]byte
	for i := 0; i < 100; i++ {
		env := &eventv1.Envelope{SchemaVersion: 1, MessageId: fmt.Sprintf("m-%d", i), WorkspaceId: "shop", SourceId: "web", Raw: []byte(`{"type":"track"}`),
			Event: &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: "Product Viewed", MessageId: fmt.Sprintf("m-%d", i), AnonymousId: "a-1", UserId: " u-1 ",
				PropertiesJson: []byte(`{"product_id":"p-42","price":19.99,"quantity":1,"category":"audio","currency":"EUR","name":"Headphones","brand":"Acme"}`),
				Context:        &eventv1.Context{Ip: "203.0.113.7", Consent: map[string]bool{"analytics": true}}}}
		if i%10 == 0 {
			env.Event.Type, env.Event.Event = eventv1.EventType_EVENT_TYPE_IDENTIFY, ""
			env.Event.TraitsJson = []byte(`{"Email":" Ada@Example.com ","phone":"0151 23456789","first_name":"Ada","plan":"pro"}`)
		}
		v, _ := proto.Marshal(env)
		out = append(out, v)
	}
	return out
}

// BenchmarkValidate is the validator's whole per-event decision (decode,
// standardize, consent, 20-schema tracking plan, PII, re-encode) on one core.
func BenchmarkValidate(b *testing.B) {
	reg, events := benchConfig(b), benchEvents(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d := Decide(Prepare(events[i%len(events)], reg), Lookup{}, now)
		if d.Outcome != Valid {
			b.Fatal(d.Rejection)
		}
		if _, err := proto.Marshal(d.Valid); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkPassThrough is the floor: decode and re-encode only.
func BenchmarkPassThrough(b *testing.B) {
	events := benchEvents(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		env, vs := DecodeEnvelope(events[i%len(events)])
		if len(vs) > 0 {
			b.Fatal(vs)
		}
		if _, err := proto.Marshal(env); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
