package standardize

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

var de = Options{DefaultRegion: "DE"}

// violationKeys renders violations as "field rule" for comparison.
func violationKeys(vs []*eventv1.Violation) []string {
	var out []string
	for _, v := range vs {
		if v.Reason != eventv1.Reason_REASON_FORMAT_VIOLATION || v.Detail == "" {
			panic("violation without format reason or detail: " + v.String())
		}
		out = append(out, v.Field+" "+v.Rule)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestIDs(t *testing.T) {
	tests := []struct {
		name       string
		in, want   *eventv1.Event
		violations []string
	}{
		{"trimmed, unicode spaces and BOM too",
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "  u1\t", AnonymousId: "\ufeffa1\u00a0", Event: " Order Completed\u200b"},
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "u1", AnonymousId: "a1", Event: "Order Completed"}, nil},
		{"inner space kept",
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_GROUP, UserId: "u 1", GroupId: " acme inc "},
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_GROUP, UserId: "u 1", GroupId: "acme inc"}, nil},
		{"emptied anonymousId is not invented, userId remains",
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_PAGE, UserId: "u1", AnonymousId: "   "},
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_PAGE, UserId: "u1"}, nil},
		{"no identity left",
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: " ", AnonymousId: ""},
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY}, []string{"/userId required"}},
		{"required per call",
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_ALIAS, UserId: "u1", PreviousId: " \n"},
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_ALIAS, UserId: "u1"}, []string{"/previousId required"}},
		{"blank event name on track",
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, AnonymousId: "a", Event: "  "},
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, AnonymousId: "a"}, []string{"/event required"}},
		{"blank groupId on group",
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_GROUP, AnonymousId: "a", GroupId: "\t"},
			&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_GROUP, AnonymousId: "a"}, []string{"/groupId required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := Event(tt.in, de)
			if got := violationKeys(vs); !equal(got, tt.violations) {
				t.Errorf("violations = %v, want %v", got, tt.violations)
			}
			if tt.in.UserId != tt.want.UserId || tt.in.AnonymousId != tt.want.AnonymousId || tt.in.Event != tt.want.Event ||
				tt.in.GroupId != tt.want.GroupId || tt.in.PreviousId != tt.want.PreviousId {
				t.Errorf("got %v, want %v", tt.in, tt.want)
			}
		})
	}
}

func TestTimestamps(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.FixedZone("CEST", 2*3600))
	ev := &eventv1.Event{
		Type: eventv1.EventType_EVENT_TYPE_TRACK, AnonymousId: "a", Event: "x",
		Timestamp:         timestamppb.New(at),
		OriginalTimestamp: timestamppb.New(at.Add(999999 * time.Nanosecond)),
		SentAt:            timestamppb.New(at.Truncate(time.Second)),
		ReceivedAt:        &timestamppb.Timestamp{Seconds: 1, Nanos: 2e9}, // invalid
	}
	vs := Event(ev, de)
	if got := violationKeys(vs); !equal(got, []string{"/receivedAt timestamp"}) {
		t.Errorf("violations = %v", got)
	}
	want := time.Date(2026, 5, 1, 8, 0, 0, 123000000, time.UTC)
	if got := ev.Timestamp.AsTime(); !got.Equal(want) {
		t.Errorf("timestamp = %v, want %v", got, want)
	}
	if got := ev.OriginalTimestamp.AsTime(); !got.Equal(want.Add(time.Millisecond)) {
		t.Errorf("originalTimestamp = %v (truncated, not rounded, to the ms)", got)
	}
	if ev.SentAt.Nanos != 0 || ev.ReceivedAt.Nanos != 2e9 {
		t.Errorf("sentAt %v, receivedAt %v (an invalid one is left alone)", ev.SentAt, ev.ReceivedAt)
	}
}

// traitCase runs one traits object through Event as identify traits.
type traitCase struct {
	name       string
	in, want   string
	violations []string
}

func runTraits(t *testing.T, typ eventv1.EventType, opt Options, tests []traitCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &eventv1.Event{Type: typ, UserId: "u1", GroupId: "g1", TraitsJson: []byte(tt.in)}
			vs := Event(ev, opt)
			if got := string(ev.TraitsJson); got != tt.want {
				t.Errorf("traits\n got %s\nwant %s", got, tt.want)
			}
			if got := violationKeys(vs); !equal(got, tt.violations) {
				t.Errorf("violations = %v, want %v", got, tt.violations)
			}
		})
	}
}

func TestRenameReservedTraits(t *testing.T) {
	runTraits(t, eventv1.EventType_EVENT_TYPE_IDENTIFY, de, []traitCase{
		{"first name spellings", `{"first_name":"Ada"}`, `{"firstName":"Ada"}`, nil},
		{"FirstName", `{"FirstName":"Ada","First Name":"x"}`, `{"firstName":"Ada","First Name":"x"}`, nil},
		{"First Name", `{"First Name":"Ada"}`, `{"firstName":"Ada"}`, nil},
		{"firstname", `{"firstname":"Ada","LAST-NAME":"Lovelace","surname":"L"}`, `{"firstName":"Ada","lastName":"Lovelace","surname":"L"}`, nil},
		{"email spellings", `{"e_mail":"a@x.io"}`, `{"email":"a@x.io"}`, nil},
		{"EMAIL", `{"EMAIL":"a@x.io"}`, `{"email":"a@x.io"}`, nil},
		{"email_address", `{"email_address":"a@x.io"}`, `{"email":"a@x.io"}`, nil},
		{"phone spellings", `{"phone_number":"+4930901820"}`, `{"phone":"+4930901820"}`, nil},
		{"mobile", `{"mobile":"+4930901820"}`, `{"phone":"+4930901820"}`, nil},
		{"created_at", `{"created_at":"2024-05-01T10:00:00.000Z","createdat":"x"}`, `{"createdAt":"2024-05-01T10:00:00.000Z","createdat":"x"}`, nil},
		{"user_name", `{"user_name":"ada"}`, `{"username":"ada"}`, nil},
		{"the rest", `{"Birthday":"1990-01-02","date_of_birth":"x","Avatar":"a.png","AGE":3,"Gender":"f","Title":"CTO","Website":"x.io","Description":"d","Name":"Ada L","ID":"7","Address":{},"Company":{"name":"Acme"}}`,
			`{"birthday":"1990-01-02T00:00:00.000Z","date_of_birth":"x","avatar":"a.png","age":3,"gender":"f","title":"CTO","website":"x.io","description":"d","name":"Ada L","id":"7","address":{},"company":{"name":"Acme"}}`, nil},
		{"canonical wins, other kept untouched and unchecked", `{"Email":"NOT AN EMAIL","email":"Ada@X.io"}`, `{"Email":"NOT AN EMAIL","email":"ada@x.io"}`, nil},
		{"first other spelling wins", `{"e_mail":"a@x.io","Email":"b@x.io"}`, `{"email":"a@x.io","Email":"b@x.io"}`, nil},
		{"position, unknown keys and number text kept", `{"plan":"pro","First_Name":"Ada","n":1.50,"big":12345678901234567890}`, `{"plan":"pro","firstName":"Ada","n":1.50,"big":12345678901234567890}`, nil},
		{"system keys never renamed", `{"_id":"x","$email":"a@x.io"}`, `{"_id":"x","$email":"a@x.io"}`, nil},
		{"address keys", `{"address":{"Postal_Code":"10115","zip":"x","City":"Berlin","street_address":"Unter den Linden 1"}}`,
			`{"address":{"postalCode":"10115","zip":"x","city":"Berlin","street":"Unter den Linden 1"}}`, nil},
		{"address not an object is left", `{"Address":"Berlin"}`, `{"address":"Berlin"}`, nil},
		{"nothing to do: bytes untouched", `{ "plan" : "pro" }`, `{ "plan" : "pro" }`, nil},
		{"duplicate canonical keys both standardized", `{"email":"A@X.io","email":"B@X.io"}`, `{"email":"a@x.io","email":"b@x.io"}`, nil},
		{"escaped key untouched, renamed key re-encoded", `{"\u0070lan":"x","first\u005fname":"Ada"}`, `{"\u0070lan":"x","firstName":"Ada"}`, nil},
	})
}

func TestGroupTraits(t *testing.T) {
	runTraits(t, eventv1.EventType_EVENT_TYPE_GROUP, de, []traitCase{
		{"group spellings", `{"Employees":"50","Industry":"Tech","first_name":"x","Plan":"pro","E-Mail":"Billing@Acme.io"}`,
			`{"employees":"50","industry":"Tech","first_name":"x","plan":"pro","email":"billing@acme.io"}`, nil},
		{"age is not a group trait", `{"age":"42"}`, `{"age":"42"}`, nil},
		{"createdAt", `{"created_at":1714557600}`, `{"createdAt":"2024-05-01T10:00:00.000Z"}`, nil},
	})
}

func TestEmail(t *testing.T) {
	runTraits(t, eventv1.EventType_EVENT_TYPE_IDENTIFY, de, []traitCase{
		{"trimmed and lower-cased", `{"email":"  Ada.Lovelace@Example.COM \n"}`, `{"email":"ada.lovelace@example.com"}`, nil},
		{"already clean: untouched", `{"email":"ada@example.com"}`, `{"email":"ada@example.com"}`, nil},
		{"plus addressing", `{"email":"Ada+News@Example.com"}`, `{"email":"ada+news@example.com"}`, nil},
		{"no dot in domain", `{"email":" Ada@localhost "}`, `{"email":"Ada@localhost"}`, []string{"/traits/email email"}},
		{"no at", `{"email":"ada.example.com"}`, `{"email":"ada.example.com"}`, []string{"/traits/email email"}},
		{"display name", `{"email":"Ada <ada@example.com>"}`, `{"email":"Ada <ada@example.com>"}`, []string{"/traits/email email"}},
		{"trailing dot", `{"email":"ada@example."}`, `{"email":"ada@example."}`, []string{"/traits/email email"}},
		{"two ats", `{"email":"a@b@example.com"}`, `{"email":"a@b@example.com"}`, []string{"/traits/email email"}},
		{"not a string", `{"email":42}`, `{"email":42}`, []string{"/traits/email email"}},
		{"null and empty are no value", `{"email":null,"e_mail":""}`, `{"email":null,"e_mail":""}`, nil},
		{"pointer escaping", `{"a/b~":1,"email":"x"}`, `{"a/b~":1,"email":"x"}`, []string{"/traits/email email"}},
	})
}

func TestPhone(t *testing.T) {
	runTraits(t, eventv1.EventType_EVENT_TYPE_IDENTIFY, de, []traitCase{
		{"German mobile without +49", `{"phone":"0151 1234 5678"}`, `{"phone":"+4915112345678"}`, nil},
		{"with +49 and punctuation", `{"phone":"+49 (30) 901820"}`, `{"phone":"+4930901820"}`, nil},
		{"international prefix 00", `{"phone":"0049 151 12345678"}`, `{"phone":"+4915112345678"}`, nil},
		{"own country code without +", `{"phone":"4915112345678"}`, `{"phone":"+4915112345678"}`, nil},
		{"JSON number", `{"phone":4915112345678}`, `{"phone":"+4915112345678"}`, nil},
		{"another country keeps its code", `{"phone":"+1 (415) 555-2671"}`, `{"phone":"+14155552671"}`, nil},
		{"extension", `{"phone":"030 901820 ext. 12"}`, `{"phone":"+4930901820;ext=12"}`, nil},
		{"already E.164: untouched", `{"phone":"+4915112345678"}`, `{"phone":"+4915112345678"}`, nil},
		{"too short", `{"phone":" 12 "}`, `{"phone":" 12 "}`, []string{"/traits/phone phone"}},
		{"not a number", `{"phone":"call me"}`, `{"phone":"call me"}`, []string{"/traits/phone phone"}},
		{"unknown country code", `{"phone":"+999 1234567"}`, `{"phone":"+999 1234567"}`, []string{"/traits/phone phone"}},
		{"object", `{"phone":{"n":1}}`, `{"phone":{"n":1}}`, []string{"/traits/phone phone"}},
		{"null", `{"phone":null}`, `{"phone":null}`, nil},
	})
	runTraits(t, eventv1.EventType_EVENT_TYPE_IDENTIFY, Options{}, []traitCase{
		{"no default region: national number reported", `{"phone":"0151 12345678"}`, `{"phone":"0151 12345678"}`, []string{"/traits/phone phone"}},
		{"no default region: international fine", `{"phone":"+44 20 7946 0958"}`, `{"phone":"+442079460958"}`, nil},
	})
	runTraits(t, eventv1.EventType_EVENT_TYPE_IDENTIFY, Options{DefaultRegion: "us"}, []traitCase{
		{"lower-case region, US national", `{"phone":"(415) 555-2671"}`, `{"phone":"+14155552671"}`, nil},
		{"US number as JSON number", `{"phone":4155552671}`, `{"phone":"+14155552671"}`, nil},
	})
}

func TestCoercion(t *testing.T) {
	runTraits(t, eventv1.EventType_EVENT_TYPE_IDENTIFY, de, []traitCase{
		{"age numeric string", `{"age":"42"}`, `{"age":42}`, nil},
		{"age padded decimal", `{"age":" 42.5 "}`, `{"age":42.5}`, nil},
		{"age number untouched", `{"age":42}`, `{"age":42}`, nil},
		{"age not numeric", `{"age":"forty"}`, `{"age":"forty"}`, []string{"/traits/age number"}},
		{"age leading zero is not a JSON number", `{"age":"042"}`, `{"age":"042"}`, []string{"/traits/age number"}},
		{"age boolean", `{"age":true}`, `{"age":true}`, []string{"/traits/age number"}},
		{"createdAt ISO with zone", `{"createdAt":"2024-05-01T12:00:00+02:00"}`, `{"createdAt":"2024-05-01T10:00:00.000Z"}`, nil},
		{"createdAt ISO microseconds truncated", `{"createdAt":"2024-05-01T10:00:00.123999Z"}`, `{"createdAt":"2024-05-01T10:00:00.123Z"}`, nil},
		{"createdAt no zone is UTC", `{"createdAt":"2024-05-01 10:00:00"}`, `{"createdAt":"2024-05-01T10:00:00.000Z"}`, nil},
		{"createdAt canonical untouched", `{"createdAt":"2024-05-01T10:00:00.000Z"}`, `{"createdAt":"2024-05-01T10:00:00.000Z"}`, nil},
		{"createdAt Unix seconds", `{"createdAt":1714557600}`, `{"createdAt":"2024-05-01T10:00:00.000Z"}`, nil},
		{"createdAt Unix seconds with fraction, exact", `{"createdAt":1714557600.123}`, `{"createdAt":"2024-05-01T10:00:00.123Z"}`, nil},
		{"createdAt Unix milliseconds", `{"createdAt":1714557600123}`, `{"createdAt":"2024-05-01T10:00:00.123Z"}`, nil},
		{"createdAt exponent form", `{"createdAt":1.7145576e9}`, `{"createdAt":"2024-05-01T10:00:00.000Z"}`, nil},
		{"createdAt digit string is not guessed", `{"createdAt":"1714557600"}`, `{"createdAt":"1714557600"}`, []string{"/traits/createdAt timestamp"}},
		{"createdAt garbage", `{"createdAt":"yesterday"}`, `{"createdAt":"yesterday"}`, []string{"/traits/createdAt timestamp"}},
		{"createdAt out of range", `{"createdAt":1e300}`, `{"createdAt":1e300}`, []string{"/traits/createdAt timestamp"}},
		{"birthday date before 1970", `{"birthday":"1955-03-04"}`, `{"birthday":"1955-03-04T00:00:00.000Z"}`, nil},
		{"birthday negative Unix seconds", `{"birthday":-315619200}`, `{"birthday":"1960-01-01T00:00:00.000Z"}`, nil},
		{"boolean-looking strings are not coerced", `{"newsletter":"true","vip":"false","age":null}`, `{"newsletter":"true","vip":"false","age":null}`, nil},
		{"other numeric strings are not coerced", `{"zip":"01067","employees":"50"}`, `{"zip":"01067","employees":"50"}`, nil},
	})
}

func TestContextTraitsAndProperties(t *testing.T) {
	props := `{"email":"  Keep@AS.is ","phone":"0151 12345678","price":19.90}`
	ctx := `{"library":{"name":"analytics.js","version":"2.1"},"traits":{"E-mail":" Ada@X.io","phone":"0151 12345678"},"ip":"1.2.3.4"}`
	ev := &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, AnonymousId: "a", Event: "x",
		PropertiesJson: []byte(props), ContextJson: []byte(ctx)}
	if vs := Event(ev, de); len(vs) != 0 {
		t.Fatalf("violations: %v", vs)
	}
	if string(ev.PropertiesJson) != props {
		t.Errorf("properties changed: %s", ev.PropertiesJson)
	}
	want := `{"library":{"name":"analytics.js","version":"2.1"},"traits":{"email":"ada@x.io","phone":"+4915112345678"},"ip":"1.2.3.4"}`
	if string(ev.ContextJson) != want {
		t.Errorf("context\n got %s\nwant %s", ev.ContextJson, want)
	}

	ev = &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_GROUP, UserId: "u", GroupId: "g",
		ContextJson: []byte(`{"traits":{"age":"42","email":"nope"}}`)}
	vs := Event(ev, de)
	if got := violationKeys(vs); !equal(got, []string{"/context/traits/email email"}) {
		t.Errorf("violations = %v", got)
	}
	if string(ev.ContextJson) != `{"traits":{"age":42,"email":"nope"}}` {
		t.Errorf("context.traits are user traits on a group call too: %s", ev.ContextJson)
	}
}

func TestMalformedDocuments(t *testing.T) {
	ev := &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: "u",
		TraitsJson: []byte(`{"email":`), ContextJson: []byte(`[1]`), PropertiesJson: []byte(`nonsense`)}
	vs := Event(ev, de)
	if got := violationKeys(vs); !equal(got, []string{"/traits json", "/context json"}) {
		t.Errorf("violations = %v", got)
	}
	if string(ev.TraitsJson) != `{"email":` || string(ev.ContextJson) != `[1]` {
		t.Error("malformed documents must be left as they are")
	}
	ev = &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: "u", TraitsJson: []byte(`null`), ContextJson: []byte(` null`)}
	if vs := Event(ev, de); len(vs) != 0 {
		t.Errorf("null documents are no documents: %v", vs)
	}
	ev = &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: "u", TraitsJson: []byte(`nul`)}
	if got := violationKeys(Event(ev, de)); !equal(got, []string{"/traits json"}) {
		t.Errorf("violations = %v", got)
	}
	if vs := Event(nil, de); vs != nil {
		t.Error("nil event")
	}
}

// Violations are stored with the event, where the PII policy does not
// reach: their details must not quote the values they complain about.
func TestDetailsDoNotQuoteValues(t *testing.T) {
	const secret = "zq-secret-7"
	ev := &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: "u", TraitsJson: []byte(`{` +
		`"email":"` + secret + `@localhost","phone":"` + secret + `","age":"` + secret + `",` +
		`"createdAt":"` + secret + `","birthday":1e300,"address":{"zip":"` + secret + `"}}`)}
	vs := Event(ev, de)
	if len(vs) != 5 {
		t.Fatalf("violations = %v", vs)
	}
	for _, v := range vs {
		if strings.Contains(v.Detail, secret) || strings.Contains(v.Detail, "1e300") {
			t.Errorf("%s quotes the value: %s", v.Field, v.Detail)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for region, ok := range map[string]bool{"": true, "DE": true, "us": true, "XX": false, "Germany": false} {
		err := Options{DefaultRegion: region}.Validate()
		if (err == nil) != ok {
			t.Errorf("%q: %v", region, err)
		}
		if err != nil && !strings.Contains(err.Error(), "DefaultRegion") {
			t.Errorf("error does not name the field: %v", err)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"First Name": "firstname", "first-name": "firstname", "E.Mail": "email", "ÄGE": "äge",
		"_id": "", "$email": "", "": "", strings.Repeat("a", 33): "",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
