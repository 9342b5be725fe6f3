package pii

import (
	"encoding/json"
	"strings"
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

var secret = []byte("workspace-secret-0123456789abcdef")

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		err   string // substring; "" = valid
	}{
		{"empty", nil, ""},
		{"every action and root", []Rule{{"traits.email", Hash}, {"properties.card.number", Mask}, {"context.ip", Drop}, {"context.traits.phone", Keep}, {"properties.*.ssn", Drop}}, ""},
		{"unknown action", []Rule{{"traits.email", Keep}, {"traits.phone", "redact"}}, "rule 1 (traits.phone): unknown action \"redact\""},
		{"empty action", []Rule{{"traits.email", ""}}, "rule 0"},
		{"root alone", []Rule{{"traits", Drop}}, "rule 0: path \"traits\" must name a field"},
		{"unknown root", []Rule{{"userId", Hash}}, "rule 0: path \"userId\""},
		{"empty segment", []Rule{{"traits.a.b", Keep}, {"traits..email", Drop}}, "rule 1: path \"traits..email\" has an empty segment"},
		{"trailing dot", []Rule{{"traits.email.", Drop}}, "rule 0"},
		{"partial wildcard", []Rule{{"properties.card*", Drop}}, "rule 0: path \"properties.card*\""},
		{"empty path", []Rule{{"", Drop}}, "rule 0"},
		{"repeated path", []Rule{{"traits.email", Hash}, {"traits.phone", Mask}, {"traits.email", Drop}}, "rule 2: path \"traits.email\" is already named by rule 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Policy{Rules: tt.rules}.Validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func hmacOf(s string) string { return HMAC(secret, s) }

func TestApplyJSON(t *testing.T) {
	tests := []struct {
		name    string
		rules   []Rule
		doc     string // traits, properties and context get the same document
		root    string
		want    string
		changed []string
	}{
		{"hash", []Rule{{"traits.email", Hash}}, `{"email":"ada@example.com","plan":"pro"}`, "traits",
			`{"email":"` + hmacOf("ada@example.com") + `","plan":"pro"}`, []string{"traits.email"}},
		{"hash a number as its text", []Rule{{"properties.card", Hash}}, `{"card":4111111111111111}`, "properties",
			`{"card":"` + hmacOf("4111111111111111") + `"}`, []string{"properties.card"}},
		{"hash is idempotent", []Rule{{"traits.email", Hash}}, `{"email":"` + hmacOf("x") + `"}`, "traits",
			`{"email":"` + hmacOf("x") + `"}`, nil},
		{"mask email", []Rule{{"traits.email", Mask}}, `{"email":"ada@example.com"}`, "traits", `{"email":"a***@example.com"}`, []string{"traits.email"}},
		{"mask short email local part", []Rule{{"traits.email", Mask}}, `{"email":"al@example.com"}`, "traits", `{"email":"***@example.com"}`, []string{"traits.email"}},
		{"mask string", []Rule{{"traits.name", Mask}}, `{"name":"Johnathan"}`, "traits", `{"name":"J***n"}`, []string{"traits.name"}},
		{"mask short string", []Rule{{"traits.name", Mask}}, `{"name":"Jo"}`, "traits", `{"name":"***"}`, []string{"traits.name"}},
		{"mask unicode", []Rule{{"traits.name", Mask}}, `{"name":"Łukasz Żółć"}`, "traits", `{"name":"Ł***ć"}`, []string{"traits.name"}},
		{"mask number and bool become null", []Rule{{"traits.age", Mask}, {"traits.vip", Mask}}, `{"age":42,"vip":true}`, "traits", `{"age":null,"vip":null}`, []string{"traits.age", "traits.vip"}},
		{"mask null and empty: no change", []Rule{{"traits.a", Mask}, {"traits.b", Hash}}, `{"a":null,"b":""}`, "traits", `{"a":null,"b":""}`, nil},
		{"mask IPv4 keeps /24", []Rule{{"context.ip", Mask}}, `{"ip":"203.0.113.7"}`, "context", `{"ip":"203.0.113.0"}`, []string{"context.ip"}},
		{"mask IPv6 keeps /48", []Rule{{"context.ip", Mask}}, `{"ip":"2001:db8:abcd:12::1"}`, "context", `{"ip":"2001:db8:abcd::"}`, []string{"context.ip"}},
		{"mask object masks every leaf", []Rule{{"traits.address", Mask}}, `{"address":{"street":"Unter den Linden 1","zip":10117,"geo":[52.5,"x"]}}`, "traits",
			`{"address":{"street":"U***1","zip":null,"geo":[null,"***"]}}`, []string{"traits.address"}},
		{"drop", []Rule{{"properties.card", Drop}}, `{"a":1,"card":{"number":"4111"},"b":2}`, "properties", `{"a":1,"b":2}`, []string{"properties.card"}},
		{"drop every occurrence of a repeated key", []Rule{{"traits.email", Drop}}, `{"email":"a@x.io","n":1,"email":"b@x.io"}`, "traits", `{"n":1}`, []string{"traits.email"}},
		{"hash every occurrence of a repeated key", []Rule{{"traits.email", Hash}}, `{"email":"a","email":"b"}`, "traits",
			`{"email":"` + hmacOf("a") + `","email":"` + hmacOf("b") + `"}`, []string{"traits.email"}},
		{"keep", []Rule{{"traits.email", Keep}}, `{"email":"a@x.io"}`, "traits", `{"email":"a@x.io"}`, nil},
		{"nested path", []Rule{{"properties.card.number", Mask}}, `{"card":{"number":"4111111111111111","exp":"12/30"}}`, "properties",
			`{"card":{"number":"4***1","exp":"12/30"}}`, []string{"properties.card.number"}},
		{"context.traits", []Rule{{"context.traits.phone", Hash}}, `{"library":{"name":"x"},"traits":{"phone":"+4915112345678"}}`, "context",
			`{"library":{"name":"x"},"traits":{"phone":"` + hmacOf("+4915112345678") + `"}}`, []string{"context.traits.phone"}},
		{"absent path: no-op", []Rule{{"traits.ssn", Drop}, {"properties.card.number", Mask}}, `{"card":{"cvv":"123"}}`, "properties", `{"card":{"cvv":"123"}}`, nil},
		{"non-object intermediate: no-op", []Rule{{"properties.card.number", Drop}}, `{"card":"4111"}`, "properties", `{"card":"4111"}`, nil},
		{"null intermediate: no-op", []Rule{{"properties.card.number", Drop}}, `{"card":null}`, "properties", `{"card":null}`, nil},
		{"arrays are transparent", []Rule{{"properties.products.sku", Hash}}, `{"products":[{"sku":"a","price":1},{"price":2},"loose",[{"sku":"b"}]]}`, "properties",
			`{"products":[{"sku":"` + hmacOf("a") + `","price":1},{"price":2},"loose",[{"sku":"` + hmacOf("b") + `"}]]}`,
			[]string{"properties.products[0].sku", "properties.products[3][0].sku"}},
		{"drop inside arrays", []Rule{{"properties.products.email", Drop}}, `{"products":[{"email":"a","x":1}]}`, "properties", `{"products":[{"x":1}]}`, []string{"properties.products[0].email"}},
		{"array as target: every element", []Rule{{"traits.emails", Mask}}, `{"emails":["ada@x.io","grace@y.io"]}`, "traits", `{"emails":["a***@x.io","g***@y.io"]}`, []string{"traits.emails"}},
		{"wildcard", []Rule{{"properties.*.ssn", Drop}}, `{"a":{"ssn":"1","k":1},"b":{"ssn":"2"},"c":3}`, "properties", `{"a":{"k":1},"b":{},"c":3}`, []string{"properties.a.ssn", "properties.b.ssn"}},
		{"wildcard at the end", []Rule{{"traits.*", Mask}}, `{"a":"abc","b":1}`, "traits", `{"a":"a***c","b":null}`, []string{"traits.a", "traits.b"}},
		{"first rule decides: keep then hash all", []Rule{{"traits.email", Keep}, {"traits.*", Hash}}, `{"email":"a@x.io","phone":"+49"}`, "traits",
			`{"email":"a@x.io","phone":"` + hmacOf("+49") + `"}`, []string{"traits.phone"}},
		{"first rule decides: mask then hash the container", []Rule{{"properties.card.number", Mask}, {"properties.card", Hash}}, `{"card":{"number":"4111","name":"Ada"}}`, "properties",
			`{"card":{"number":"4***1","name":"` + hmacOf("Ada") + `"}}`, []string{"properties.card.number", "properties.card"}},
		{"first rule decides: keep a container", []Rule{{"properties.card", Keep}, {"properties.card.number", Drop}}, `{"card":{"number":"4111"}}`, "properties", `{"card":{"number":"4111"}}`, nil},
		{"a later drop removes a decided container whole", []Rule{{"properties.card.last4", Keep}, {"properties.card", Drop}}, `{"card":{"last4":"1111"}}`, "properties", `{}`, []string{"properties.card"}},
		{"a dotted key is not a path", []Rule{{"properties.card.number", Keep}, {"properties.*", Hash}}, `{"card.number":"x"}`, "properties",
			`{"card.number":"` + hmacOf("x") + `"}`, []string{"properties.card.number"}},
		{"untouched members keep their text", []Rule{{"traits.email", Drop}}, `{"n":1.50,"big":12345678901234567890,"s":"\u00e9","email":"x"}`, "traits",
			`{"n":1.50,"big":12345678901234567890,"s":"\u00e9"}`, []string{"traits.email"}},
		{"no change: bytes untouched", []Rule{{"traits.email", Drop}}, `{ "n" : 1 }`, "traits", `{ "n" : 1 }`, nil},
		{"unparsable document removed whole", []Rule{{"traits.email", Keep}}, `{"email":`, "traits", ``, []string{"traits"}},
		{"non-object document removed whole", []Rule{{"properties.x", Drop}}, `[1]`, "properties", ``, []string{"properties"}},
		{"text starting like null removed whole", []Rule{{"properties.x", Drop}}, `nonsense`, "properties", ``, []string{"properties"}},
		{"null document is no document", []Rule{{"properties.x", Drop}}, ` null `, "properties", ` null `, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Rules: tt.rules}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			ev := &eventv1.Event{}
			switch tt.root {
			case "traits":
				ev.TraitsJson = []byte(tt.doc)
			case "properties":
				ev.PropertiesJson = []byte(tt.doc)
			case "context":
				ev.ContextJson = []byte(tt.doc)
			}
			changed := p.Apply(ev, secret)
			got := map[string][]byte{"traits": ev.TraitsJson, "properties": ev.PropertiesJson, "context": ev.ContextJson}[tt.root]
			if string(got) != tt.want {
				t.Errorf("%s\n got %s\nwant %s", tt.root, got, tt.want)
			}
			if len(got) > 0 && !json.Valid(got) {
				t.Errorf("invalid JSON: %s", got)
			}
			if strings.Join(changed, " ") != strings.Join(tt.changed, " ") {
				t.Errorf("changed = %q, want %q", changed, tt.changed)
			}
		})
	}
}

func TestApplyTypedContext(t *testing.T) {
	newEvent := func() *eventv1.Event {
		return &eventv1.Event{
			ContextJson: []byte(`{"ip":"203.0.113.7","userAgent":"Mozilla/5.0","device":{"id":"dev-1","advertisingId":"ad-1"}}`),
			Context: &eventv1.Context{
				Ip: "203.0.113.7", UserAgent: "Mozilla/5.0", Locale: "de-DE",
				Device:      &eventv1.Device{Id: "dev-1", AdvertisingId: "ad-1", Model: "Pixel"},
				Page:        &eventv1.Page{Url: "https://x.io/?email=a@x.io", Path: "/"},
				ExternalIds: []*eventv1.ExternalID{{Id: "a@x.io", Type: "email"}},
				Library:     &eventv1.Library{Name: "analytics.js"},
			},
		}
	}
	t.Run("named fields", func(t *testing.T) {
		ev := newEvent()
		changed := Policy{Rules: []Rule{{"context.ip", Mask}, {"context.userAgent", Drop}, {"context.externalIds.id", Hash}, {"context.page.url", Drop}}}.Apply(ev, secret)
		c := ev.Context
		if c.Ip != "203.0.113.0" || c.UserAgent != "" || c.ExternalIds[0].Id != hmacOf("a@x.io") || c.Page.Url != "" || c.Page.Path != "/" || c.Locale != "de-DE" {
			t.Errorf("typed context = %v", c)
		}
		if string(ev.ContextJson) != `{"ip":"203.0.113.0","device":{"id":"dev-1","advertisingId":"ad-1"}}` {
			t.Errorf("context_json = %s", ev.ContextJson)
		}
		want := "context.ip context.userAgent context.externalIds.id context.page.url"
		if got := strings.Join(changed, " "); got != want {
			t.Errorf("changed = %q, want %q", got, want)
		}
	})
	t.Run("container and wildcard", func(t *testing.T) {
		ev := newEvent()
		Policy{Rules: []Rule{{"context.device", Drop}}}.Apply(ev, secret)
		if d := ev.Context.Device; d.Id != "" || d.AdvertisingId != "" || d.Model != "Pixel" {
			t.Errorf("device = %v (ids cleared, model kept)", d)
		}
		ev = newEvent()
		Policy{Rules: []Rule{{"context.ip", Keep}, {"context.*", Hash}}}.Apply(ev, secret)
		if ev.Context.Ip != "203.0.113.7" || ev.Context.UserAgent != hmacOf("Mozilla/5.0") || ev.Context.Device.Id != hmacOf("dev-1") {
			t.Errorf("keep then wildcard: %v", ev.Context)
		}
	})
	t.Run("typed field without context_json, nil context", func(t *testing.T) {
		ev := &eventv1.Event{Context: &eventv1.Context{Ip: "10.1.2.3"}}
		if changed := (Policy{Rules: []Rule{{"context.ip", Mask}}}).Apply(ev, secret); ev.Context.Ip != "10.1.2.0" || len(changed) != 1 {
			t.Errorf("ip %q, changed %v", ev.Context.Ip, changed)
		}
		if changed := (Policy{Rules: []Rule{{"context.ip", Mask}}}).Apply(&eventv1.Event{}, secret); changed != nil {
			t.Errorf("changed %v", changed)
		}
		if (Policy{}).Apply(nil, secret) != nil {
			t.Error("nil event")
		}
	})
}

func TestHMAC(t *testing.T) {
	a := HMAC(secret, "ada@example.com")
	if a != HMAC(secret, "ada@example.com") {
		t.Error("not deterministic")
	}
	if a == HMAC([]byte("another-workspace-secret"), "ada@example.com") {
		t.Error("different secrets give the same hash")
	}
	if a == HMAC(secret, "grace@example.com") {
		t.Error("different values give the same hash")
	}
	if !strings.HasPrefix(a, "hmac:") || len(a) != 5+64 || !isHMAC(a) {
		t.Errorf("format %q", a)
	}
	// RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
	if got := HMAC([]byte("Jefe"), "what do ya want for nothing?"); got != "hmac:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("not HMAC-SHA256: %s", got)
	}
}

func TestHashWithoutSecretDrops(t *testing.T) {
	ev := &eventv1.Event{TraitsJson: []byte(`{"email":"a@x.io","n":1}`), Context: &eventv1.Context{Ip: "1.2.3.4"}}
	changed := Policy{Rules: []Rule{{"traits.email", Hash}, {"context.ip", Hash}}}.Apply(ev, nil)
	if string(ev.TraitsJson) != `{"n":1}` || ev.Context.Ip != "" {
		t.Errorf("traits %s, ip %q", ev.TraitsJson, ev.Context.Ip)
	}
	if len(changed) != 2 {
		t.Errorf("changed %v", changed)
	}
}

func TestUnvalidatedPolicyFailsClosed(t *testing.T) {
	ev := &eventv1.Event{TraitsJson: []byte(`{"email":"a@x.io","n":1}`)}
	Policy{Rules: []Rule{{"traits.email", "redact"}, {"traits..n", Drop}}}.Apply(ev, secret)
	if string(ev.TraitsJson) != `{"n":1}` {
		t.Errorf("unknown action must drop, malformed path must be skipped: %s", ev.TraitsJson)
	}
}

func TestMaskString(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"a":                 "***",
		"ab":                "***",
		"abc":               "a***c",
		"J***n":             "J***n",
		"***":               "***",
		"ada@example.com":   "a***@example.com",
		"a***@example.com":  "a***@example.com",
		"@example.com":      "@***m",
		"ada@":              "a***@",
		"::ffff:10.1.2.3":   "::ffff:10.1.2.0",
		"fe80::1%eth0":      "fe80::",
		"4111 1111 1111 11": "4***1",
	} {
		if got := MaskString(in); got != want {
			t.Errorf("MaskString(%q) = %q, want %q", in, got, want)
		}
		if got := MaskString(MaskString(in)); got != MaskString(in) {
			t.Errorf("MaskString not idempotent on %q: %q", in, got)
		}
	}
}
