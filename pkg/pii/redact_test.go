package pii

import (
	"encoding/json"
	"testing"
)

func TestRedactionIdentifier(t *testing.T) {
	r := NewRedaction(nil)
	h := HMAC([]byte("k"), "ada@example.com")
	for _, tt := range []struct{ typ, in, want string }{
		{"email", "ada@example.com", "a***@example.com"},
		{"email", "al@example.com", "***@example.com"},
		{"phone", "+4915112345678", "+***8"},
		{"email", h, h},
		{"user_id", "42", "42"},
		{"anonymous_id", "dev-1", "dev-1"},
	} {
		if got := r.Identifier(tt.typ, tt.in); got != tt.want {
			t.Errorf("%s:%s → %q; want %q", tt.typ, tt.in, got, tt.want)
		}
		if again := r.Identifier(tt.typ, r.Identifier(tt.typ, tt.in)); again != tt.want {
			t.Errorf("%s:%s masked twice → %q", tt.typ, tt.in, again)
		}
	}
}

func TestRedactionTraits(t *testing.T) {
	h := HMAC([]byte("k"), "x")
	for _, tt := range []struct {
		name  string
		rules []Rule
		in    string
		want  string
	}{
		{"defaults", nil,
			`{"email":"ada@example.com","phone":"+4915112345678","name":"Ada Lovelace","plan":"pro","age":36}`,
			`{"age":36,"email":"a***@example.com","name":"A***e","phone":"+***8","plan":"pro"}`},
		{"address beneath", nil,
			`{"address":{"city":"London","postalCode":12345},"birthday":"1815-12-10"}`,
			`{"address":{"city":"L***n","postalCode":null},"birthday":"1***0"}`},
		{"workspace rule", []Rule{{Path: "traits.loyalty_id", Action: Keep}, {Path: "traits.ssn", Action: Hash}},
			`{"loyalty_id":"LX-99817","ssn":"` + h + `","plan":"pro"}`,
			`{"loyalty_id":"L***7","plan":"pro","ssn":"` + h + `"}`},
		{"rule on another root leaves traits", []Rule{{Path: "properties.card", Action: Drop}},
			`{"plan":"pro"}`, `{"plan":"pro"}`},
	} {
		var in map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tt.in), &in); err != nil {
			t.Fatal(err)
		}
		before := string(mustJSON(t, in))
		got, _ := json.Marshal(NewRedaction(tt.rules).Traits(in))
		if string(got) != tt.want {
			t.Errorf("%s: %s; want %s", tt.name, got, tt.want)
		}
		if string(mustJSON(t, in)) != before {
			t.Errorf("%s: input modified", tt.name)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRedactionDocument(t *testing.T) {
	r := NewRedaction([]Rule{{Path: "properties.card.number", Action: Mask}})
	for _, tt := range []struct{ root, in, want string }{
		{"context", `{"ip":"203.0.113.7","traits":{"email":"ada@example.com"},"locale":"en"}`, `{"ip":"203.0.113.0","traits":{"email":"a***@example.com"},"locale":"en"}`},
		{"properties", `{"revenue":10,"email":"bob@x.io","card":{"number":"4111111111111111"}}`, `{"revenue":10,"email":"b***@x.io","card":{"number":"4***1"}}`},
		{"traits", `{"firstName":"Ada","lastName":"Lovelace"}`, `{"firstName":"A***a","lastName":"L***e"}`},
		{"traits", `[1,2]`, `null`},
		{"traits", ``, ``},
		{"properties", `{}`, `{}`},
	} {
		if got := string(r.Document(tt.root, []byte(tt.in))); got != tt.want {
			t.Errorf("%s %s → %s; want %s", tt.root, tt.in, got, tt.want)
		}
	}
	if got := r.String("context.ip", "203.0.113.7"); got != "203.0.113.0" {
		t.Errorf("context_ip → %s", got)
	}
	if got := r.String("context.locale", "en"); got != "en" {
		t.Errorf("context_locale → %s", got)
	}
}
