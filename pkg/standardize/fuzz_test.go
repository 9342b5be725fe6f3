package standardize

import (
	"bytes"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// FuzzEvent feeds arbitrary traits, properties and context.traits bytes
// through Event, as identify and as group. Whatever comes in, it must not
// panic; a valid JSON object must stay one; properties are never changed;
// and standardizing twice changes nothing more (a redelivered event looks
// the same).
func FuzzEvent(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"First Name":" Ada ","E-Mail":"  Ada@X.io ","Phone":"0151 12345678","created_at":1714557600,"age":"42"}`,
		`{"email":"a@b@c","phone":"+999","age":"x","birthday":"1955-13-45","createdAt":1e300}`,
		`{"address":{"Postal_Code":"1","zip":2},"email":"","e_mail":null}`,
		`{"phone":"030 901820 ext. 12","createdAt":-1.5,"birthday":"2024-05-01 10:00:00.123456"}`,
		`{"email":"\u0041@x.io","\u0065mail":"B@x.io","phone":4915112345678}`,
		`{"createdAt":"2024-05-01T10:00+02:00","age":" 1e3 ","phone":"\ud800"}`,
		`{"email":"é@Ü.DE","name":"\u2028"}`,
		"{\"email\":\"\xff@x.io\"}",
		`{"a":1}garbage`,
		`[1,2]`,
		``,
		`{"phone":"+49 1` + string(bytes.Repeat([]byte("0"), 300)) + `"}`,
	} {
		f.Add([]byte(s), []byte(`{"price":19.90,"email":" X@Y.z "}`))
	}
	f.Fuzz(func(t *testing.T, traits, properties []byte) {
		for _, typ := range []eventv1.EventType{eventv1.EventType_EVENT_TYPE_IDENTIFY, eventv1.EventType_EVENT_TYPE_GROUP} {
			ctx := append(append([]byte(`{"traits":`), traits...), '}')
			ev := &eventv1.Event{Type: typ, UserId: " u ", GroupId: "g",
				TraitsJson:     bytes.Clone(traits),
				PropertiesJson: bytes.Clone(properties),
				ContextJson:    ctx,
			}
			Event(ev, de)
			if !bytes.Equal(ev.PropertiesJson, properties) {
				t.Fatalf("properties changed: %q -> %q", properties, ev.PropertiesJson)
			}
			if isObject(traits) && !json.Valid(ev.TraitsJson) {
				t.Fatalf("valid traits %q became invalid JSON %q", traits, ev.TraitsJson)
			}
			if json.Valid(ctx) && !json.Valid(ev.ContextJson) {
				t.Fatalf("valid context %q became invalid JSON %q", ctx, ev.ContextJson)
			}
			again := proto.Clone(ev).(*eventv1.Event)
			Event(again, de)
			if !proto.Equal(ev, again) {
				t.Fatalf("not idempotent:\nonce:  %s\ntwice: %s", ev.TraitsJson, again.TraitsJson)
			}
		}
	})
}

func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return json.Valid(b) && len(b) > 0 && b[0] == '{'
}
