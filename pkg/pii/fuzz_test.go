package pii

import (
	"bytes"
	"encoding/json"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/jsonedit"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// FuzzApply runs a policy with every action and path kind over arbitrary
// documents: no panic; a valid object stays valid JSON (or, unparsable, is
// removed); what "traits.*" hashes leaves no readable top-level value; and
// applying the policy twice changes nothing more.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"email":"ada@example.com","phone":42,"address":{"street":"x","zip":1}}`,
		`{"card":{"number":"4111"},"products":[{"sku":"a"},[{"sku":"b"}],1],"a":{"ssn":"1"}}`,
		`{"email":"a","email":"b","ip":"203.0.113.7","traits":{"phone":"+49"}}`,
		`{"x":"\u00e9\ud800","y":true,"z":null,"w":""}`, `[1]`, `{"a":`, ``, `null`, `nonsense`,
	} {
		f.Add([]byte(s))
	}
	p := Policy{Rules: []Rule{
		{"properties.card.number", Mask}, {"properties.*.ssn", Drop}, {"properties.products.sku", Hash},
		{"properties.email", Keep}, {"properties.*", Mask},
		{"context.ip", Mask}, {"context.traits.phone", Hash}, {"context.email", Drop},
		{"traits.*", Hash},
	}}
	if err := p.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		ev := &eventv1.Event{TraitsJson: bytes.Clone(doc), PropertiesJson: bytes.Clone(doc), ContextJson: bytes.Clone(doc),
			Context: &eventv1.Context{Ip: "203.0.113.7"}}
		p.Apply(ev, secret)
		valid := json.Valid(doc) && jsonedit.KindOf(doc) == jsonedit.ObjectKind
		for _, out := range [][]byte{ev.TraitsJson, ev.PropertiesJson, ev.ContextJson} {
			if len(doc) > 0 && !valid && !jsonedit.IsNull(doc) && out != nil {
				t.Fatalf("a document that is not a JSON object survived: %q", out)
			}
			if valid && !json.Valid(out) {
				t.Fatalf("valid %q became invalid %q", doc, out)
			}
		}
		if valid {
			o, err := jsonedit.ParseObject(ev.TraitsJson)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range o.Members {
				if jsonedit.KindOf(m.Value) == jsonedit.String {
					if s, _ := jsonedit.StringValue(m.Value); s != "" && !isHMAC(s) {
						t.Fatalf("traits.%s left readable: %q", m.Key, s)
					}
				}
			}
		}
		again := proto.Clone(ev).(*eventv1.Event)
		if changed := p.Apply(again, secret); !proto.Equal(ev, again) {
			t.Fatalf("not idempotent (changed %v):\n%s\n%s", changed, ev.PropertiesJson, again.PropertiesJson)
		}
	})
}
