package standardize

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// BenchmarkEventIdentify measures a typical browser identify: a dozen traits,
// three of them spelled differently, a national phone number, an epoch
// createdAt and context.traits repeating them.
func BenchmarkEventIdentify(b *testing.B) {
	traits := []byte(`{"First Name":"Ada","last_name":"Lovelace","E-Mail":" Ada.Lovelace@Example.com ","phone":"0151 23456789",` +
		`"created_at":1714557600,"age":"36","plan":"pro","newsletter":true,"company":{"name":"Analytical Engines","employee_count":12},` +
		`"address":{"city":"London","postal_code":"SW1Y 4JH","country":"GB"},"lifetimeValue":1234.5}`)
	ctx := []byte(`{"library":{"name":"analytics.js","version":"2.11.1"},"ip":"203.0.113.7","locale":"de-DE",` +
		`"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",` +
		`"page":{"path":"/account","url":"https://shop.example/account","title":"Account"},` +
		`"traits":{"email":"ada.lovelace@example.com","phone":"+4915123456789"}}`)
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC)
	b.ReportAllocs()
	b.SetBytes(int64(len(traits) + len(ctx)))
	for b.Loop() {
		ev := &eventv1.Event{
			Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: " crm-42 ", AnonymousId: "5b1c9a8e-2f4d-4c8a-9e61-0a7d5c1e2b3f",
			Timestamp: timestamppb.New(at), ReceivedAt: timestamppb.New(at),
			TraitsJson: traits, ContextJson: ctx,
		}
		if vs := Event(ev, de); len(vs) != 0 {
			b.Fatal(vs)
		}
	}
}
