package pii

import (
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// BenchmarkApplyIdentify applies a typical policy (hash the identity traits,
// mask the IP, drop the address) to a browser identify.
func BenchmarkApplyIdentify(b *testing.B) {
	traits := []byte(`{"firstName":"Ada","lastName":"Lovelace","email":"ada.lovelace@example.com","phone":"+4915123456789",` +
		`"createdAt":"2024-05-01T10:00:00.000Z","age":36,"plan":"pro","address":{"city":"London","postalCode":"SW1Y 4JH"}}`)
	ctx := []byte(`{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.7",` +
		`"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",` +
		`"traits":{"email":"ada.lovelace@example.com","phone":"+4915123456789"}}`)
	p := Policy{Rules: []Rule{
		{"traits.email", Hash}, {"traits.phone", Hash}, {"traits.address", Drop},
		{"context.traits.email", Hash}, {"context.traits.phone", Hash}, {"context.ip", Mask},
	}}
	b.ReportAllocs()
	b.SetBytes(int64(len(traits) + len(ctx)))
	for b.Loop() {
		ev := &eventv1.Event{TraitsJson: traits, ContextJson: ctx, Context: &eventv1.Context{Ip: "203.0.113.7"}}
		if changed := p.Apply(ev, secret); len(changed) != 6 {
			b.Fatal(changed)
		}
	}
}
