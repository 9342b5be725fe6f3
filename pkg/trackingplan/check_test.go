package trackingplan

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// testPlan exercises one feature per event; the policies are placeholders
// that planWith replaces.
const testPlan = `
id: test-plan
version: 7
violations: VIOLATIONS
unplanned: UNPLANNED
events:
  Order Completed:
    properties:
      type: object
      required: [order_id, revenue]
      properties:
        order_id: {type: string, minLength: 1}
        revenue: {type: number, minimum: 0}
        currency: {enum: [USD, EUR, GBP]}
        items:
          type: array
          items:
            type: object
            properties:
              price: {type: number}
  Strict:
    properties:
      type: object
      additionalProperties: false
      properties:
        a: {type: string}
  Big Number:
    properties:
      properties:
        "n": {type: integer}   # unquoted, YAML 1.1 would read n as false
        max: {type: integer, maximum: 9007199254740992}
  Anything: {}
  Local Ref:
    properties:
      $defs:
        money: {type: number, minimum: 0}
      properties:
        total: {$ref: "#/$defs/money"}
  Either:
    properties:
      properties:
        v:
          anyOf: [{type: string}, {type: "null"}]
  Closed:
    properties:
      properties:
        items: false
        a: {type: object, properties: {b: true}, unevaluatedProperties: false}
        c: {prefixItems: [true], items: false}
  Combined:
    properties:
      dependentRequired: {coupon: [discount]}
      properties:
        qty: {oneOf: [{type: integer, multipleOf: 2}, {type: integer, multipleOf: 3}]}
        tags: {type: array, uniqueItems: true, maxItems: 3}
        status: {not: {const: deleted}}
  Many Required:
    properties:
      required: [a00, a01, a02, a03, a04, a05, a06, a07, a08, a09, a10, a11, a12,
                 a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24]
identify:
  traits:
    type: object
    required: [email]
    properties:
      email: {type: string, format: email}
      age: {type: integer, minimum: 13}
page:
  properties:
    properties:
      path: {type: string, pattern: "^/"}
screen:
  properties:
    required: [name]
group:
  traits:
    properties:
      employees: {type: integer, minimum: 0}
`

func planWith(t testing.TB, violations, unplanned string) *Plan {
	t.Helper()
	def := strings.NewReplacer("VIOLATIONS", violations, "UNPLANNED", unplanned).Replace(testPlan)
	p, err := Compile([]byte(def))
	if err != nil {
		t.Fatalf("compiling the test plan: %v", err)
	}
	return p
}

func track(name, props string) *eventv1.Event {
	return &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: name, PropertiesJson: []byte(props)}
}

func withTraits(typ eventv1.EventType, traits string) *eventv1.Event {
	return &eventv1.Event{Type: typ, TraitsJson: []byte(traits)}
}

func withProps(typ eventv1.EventType, props string) *eventv1.Event {
	return &eventv1.Event{Type: typ, PropertiesJson: []byte(props)}
}

// v is an expected violation: "field rule", and optionally text its detail
// must contain.
type v struct{ field, rule, detail string }

func TestCheck(t *testing.T) {
	const (
		identify  = eventv1.EventType_EVENT_TYPE_IDENTIFY
		page      = eventv1.EventType_EVENT_TYPE_PAGE
		screen    = eventv1.EventType_EVENT_TYPE_SCREEN
		group     = eventv1.EventType_EVENT_TYPE_GROUP
		alias     = eventv1.EventType_EVENT_TYPE_ALIAS
		schemaV   = eventv1.Reason_REASON_SCHEMA_VIOLATION
		unplanned = eventv1.Reason_REASON_UNPLANNED
		format    = eventv1.Reason_REASON_FORMAT_VIOLATION
	)
	tests := []struct {
		name                  string
		violations, unplanned string // policies
		ev                    *eventv1.Event
		want                  []v
		reason                eventv1.Reason // of every violation, when there are any
		block, planned        bool
	}{
		{name: "valid", ev: track("Order Completed", `{"order_id":"o1","revenue":12.5,"currency":"EUR","items":[{"price":1}]}`), planned: true},
		{name: "valid under block", violations: "block", ev: track("Order Completed", `{"order_id":"o1","revenue":0}`), planned: true},
		{name: "wrong type", ev: track("Order Completed", `{"order_id":"o1","revenue":"12.50"}`),
			want: []v{{"/properties/revenue", "type", `expected number, got string "12.50"`}}, reason: schemaV, planned: true},
		{name: "missing required", ev: track("Order Completed", `{"revenue":1}`),
			want: []v{{"/properties/order_id", "required", `required property "order_id" is missing`}}, reason: schemaV, planned: true},
		{name: "enum", ev: track("Order Completed", `{"order_id":"o1","revenue":1,"currency":"usd"}`),
			want: []v{{"/properties/currency", "enum", `expected one of "USD", "EUR", "GBP", got string "usd"`}}, reason: schemaV, planned: true},
		{name: "minimum", ev: track("Order Completed", `{"order_id":"o1","revenue":-0.01}`),
			want: []v{{"/properties/revenue", "minimum", "expected a number >= 0, got number -0.01"}}, reason: schemaV, planned: true},
		{name: "minLength", ev: track("Order Completed", `{"order_id":"","revenue":1}`),
			want: []v{{"/properties/order_id", "minLength", `expected at least 1 character, got string "" (0 characters)`}}, reason: schemaV, planned: true},
		{name: "additionalProperties false", ev: track("Strict", `{"a":"x","b":1,"c/d~":2}`),
			want:   []v{{"/properties/b", "additionalProperties", `property "b" is not allowed`}, {"/properties/c~1d~0", "additionalProperties", `property "c/d~"`}},
			reason: schemaV, planned: true},
		{name: "nested pointer", ev: track("Order Completed", `{"order_id":"o1","revenue":1,"items":[{"price":"9.99"},{"price":2},{"price":true}]}`),
			want:   []v{{"/properties/items/0/price", "type", `got string "9.99"`}, {"/properties/items/2/price", "type", "got boolean true"}},
			reason: schemaV, planned: true},
		{name: "several violations are ordered by field", ev: track("Order Completed", `{"revenue":"x","currency":"usd"}`),
			want:   []v{{"/properties/currency", "enum", ""}, {"/properties/order_id", "required", ""}, {"/properties/revenue", "type", ""}},
			reason: schemaV, planned: true},
		{name: "anyOf is one violation", ev: track("Either", `{"v":5}`),
			want:   []v{{"/properties/v", "anyOf", "expected a value matching one of the 2 alternatives of anyOf (expected string, got number 5; or expected null, got number 5)"}},
			reason: schemaV, planned: true},
		{name: "false schemas name their keyword", ev: track("Closed", `{"items":1,"a":{"b":1,"z":2},"c":[1,2]}`),
			want: []v{
				{"/properties/a/z", "unevaluatedProperties", `property "z" is not allowed by unevaluatedProperties`},
				{"/properties/c/1", "items", "item 1 is not allowed by items"},
				{"/properties/items", "false", "no value is allowed here, got number 1"},
			}, reason: schemaV, planned: true},
		{name: "oneOf matching twice", ev: track("Combined", `{"qty":6}`),
			want: []v{{"/properties/qty", "oneOf", "alternatives 0 and 1 both match"}}, reason: schemaV, planned: true},
		{name: "oneOf matching none", ev: track("Combined", `{"qty":7}`),
			want: []v{{"/properties/qty", "oneOf", "expected a multiple of 2, got number 7; or expected a multiple of 3, got number 7"}}, reason: schemaV, planned: true},
		{name: "dependentRequired, uniqueItems, maxItems, not", ev: track("Combined", `{"coupon":"X","tags":["a","b","a","c"],"status":"deleted"}`),
			want: []v{
				{"/properties/discount", "dependentRequired", `property "discount" is required when "coupon" is present`},
				{"/properties/status", "not", `got string "deleted"`},
				{"/properties/tags", "maxItems", "expected at most 3 items, got 4 items"},
				{"/properties/tags", "uniqueItems", "items 0 and 2 are equal"},
			}, reason: schemaV, planned: true},
		{name: "local $ref", ev: track("Local Ref", `{"total":-1}`),
			want: []v{{"/properties/total", "minimum", ""}}, reason: schemaV, planned: true},
		{name: "violations are capped", ev: track("Many Required", `{}`),
			want: func() []v {
				var vs []v
				for i := range MaxViolations {
					vs = append(vs, v{fmt.Sprintf("/properties/a%02d", i), "required", ""})
				}
				return vs
			}(), reason: schemaV, planned: true},

		// policies
		{name: "violation under allow passes tagged", violations: "allow", ev: track("Order Completed", `{"order_id":1,"revenue":1}`),
			want: []v{{"/properties/order_id", "type", ""}}, reason: schemaV, planned: true},
		{name: "violation under block is rejected", violations: "block", ev: track("Order Completed", `{"order_id":1,"revenue":1}`),
			want: []v{{"/properties/order_id", "type", ""}}, reason: schemaV, block: true, planned: true},
		{name: "unplanned under allow passes tagged", unplanned: "allow", violations: "block", ev: track("Experiment Viewed", `{}`),
			want: []v{{"/event", "unplanned", `track event "Experiment Viewed" is not in tracking plan test-plan v7`}}, reason: unplanned},
		{name: "unplanned under block is rejected", unplanned: "block", ev: track("Experiment Viewed", `{}`),
			want: []v{{"/event", "unplanned", ""}}, reason: unplanned, block: true},
		{name: "names match exactly", unplanned: "block", ev: track("order completed", `{}`),
			want: []v{{"/event", "unplanned", ""}}, reason: unplanned, block: true},
		{name: "planned without schema", unplanned: "block", violations: "block", ev: track("Anything", `{"x":[1,{"y":null}]}`), planned: true},

		// empty and absent objects are {}
		{name: "absent properties vs required", ev: track("Order Completed", ""),
			want: []v{{"/properties/order_id", "required", ""}, {"/properties/revenue", "required", ""}}, reason: schemaV, planned: true},
		{name: "empty object vs required", ev: track("Order Completed", "{}"),
			want: []v{{"/properties/order_id", "required", ""}, {"/properties/revenue", "required", ""}}, reason: schemaV, planned: true},
		{name: "null properties vs required", ev: track("Order Completed", " null "),
			want: []v{{"/properties/order_id", "required", ""}, {"/properties/revenue", "required", ""}}, reason: schemaV, planned: true},
		{name: "absent properties, nothing required", ev: track("Strict", ""), planned: true},

		// undecodable input is always blocked
		{name: "invalid JSON", violations: "allow", ev: track("Order Completed", `{"order_id":"o1",`),
			want: []v{{"/properties", "json", "properties must be a JSON object"}}, reason: format, block: true, planned: true},
		{name: "trailing garbage", ev: track("Order Completed", `{"order_id":"o1","revenue":1} {}`),
			want: []v{{"/properties", "json", ""}}, reason: format, block: true, planned: true},
		{name: "not an object", ev: track("Order Completed", `[1,2]`),
			want: []v{{"/properties", "json", "got array"}}, reason: format, block: true, planned: true},
		{name: "invalid traits JSON", ev: withTraits(identify, `{"email":`),
			want: []v{{"/traits", "json", "traits must be a JSON object"}}, reason: format, block: true, planned: true},
		{name: "invalid JSON without a schema is not looked at", ev: withProps(alias, `{`), planned: true},

		// numbers keep their precision
		{name: "big integer is an integer", ev: track("Big Number", `{"n":12345678901234567890123456789}`), planned: true},
		{name: "integral float is an integer", ev: track("Big Number", `{"n":1.0e2}`), planned: true},
		{name: "fraction is not an integer", ev: track("Big Number", `{"n":1.5}`),
			want: []v{{"/properties/n", "type", "expected integer, got number 1.5"}}, reason: schemaV, planned: true},
		{name: "big fraction is not an integer", ev: track("Big Number", `{"n":12345678901234567890123456789.5}`),
			want: []v{{"/properties/n", "type", ""}}, reason: schemaV, planned: true},
		{name: "2^53+1 is above a 2^53 maximum", ev: track("Big Number", `{"max":9007199254740993}`),
			want: []v{{"/properties/max", "maximum", "expected a number <= 9007199254740992, got number 9007199254740993"}}, reason: schemaV, planned: true},
		{name: "2^53 is at a 2^53 maximum", ev: track("Big Number", `{"max":9007199254740992}`), planned: true},
		{name: "beyond float64 is still checked exactly", ev: track("Order Completed", `{"order_id":"o1","revenue":1e400}`), planned: true},
		{name: "exponent beyond big.Rat is refused, not a panic", violations: "allow", ev: track("Order Completed", `{"order_id":"o1","revenue":1e9999999}`),
			want: []v{{"/properties/revenue", "json", "number 1e9999999 is beyond what a tracking plan checks"}}, reason: format, block: true, planned: true},
		{name: "exponent of a million is refused, not 50 ms of arithmetic", ev: track("Order Completed", `{"items":[{"price":1},{"price":-1E-999999}]}`),
			want: []v{{"/properties/items/1/price", "json", ""}}, reason: format, block: true, planned: true},
		{name: "numbers are not looked at without a schema", ev: track("Anything", `{"n":`+strings.Repeat("9", 101)+`}`), planned: true},
		{name: "101-digit number is refused", ev: track("Big Number", `{"x":[`+strings.Repeat("9", 101)+`]}`),
			want: []v{{"/properties/x/0", "json", ""}}, reason: format, block: true, planned: true},

		// other types
		{name: "identify valid", ev: withTraits(identify, `{"email":"ada@example.com","age":36}`), planned: true},
		{name: "identify traits", violations: "block", ev: withTraits(identify, `{"email":"not-an-email","age":12}`),
			want:   []v{{"/traits/age", "minimum", "expected a number >= 13, got number 12"}, {"/traits/email", "format", `expected format "email", got string "not-an-email"`}},
			reason: schemaV, block: true, planned: true},
		{name: "identify without traits", ev: withTraits(identify, ""),
			want: []v{{"/traits/email", "required", ""}}, reason: schemaV, planned: true},
		{name: "identify checks traits, not properties", ev: &eventv1.Event{Type: identify, TraitsJson: []byte(`{"email":"a@b.co"}`), PropertiesJson: []byte(`{`)}, planned: true},
		{name: "page", ev: withProps(page, `{"path":"pricing"}`),
			want: []v{{"/properties/path", "pattern", `expected a string matching "^/", got string "pricing"`}}, reason: schemaV, planned: true},
		{name: "page valid", ev: withProps(page, `{"path":"/pricing"}`), planned: true},
		{name: "screen", ev: withProps(screen, `{}`),
			want: []v{{"/properties/name", "required", ""}}, reason: schemaV, planned: true},
		{name: "group", ev: withTraits(group, `{"employees":-1}`),
			want: []v{{"/traits/employees", "minimum", ""}}, reason: schemaV, planned: true},
		{name: "alias has no schema", violations: "block", unplanned: "block", ev: &eventv1.Event{Type: alias, PreviousId: "a"}, planned: true},
		{name: "unspecified type has no schema", ev: &eventv1.Event{}, planned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planWith(t, or(tt.violations, "allow"), or(tt.unplanned, "allow"))
			got := p.Check(tt.ev)
			if got.Block != tt.block || got.Planned != tt.planned {
				t.Errorf("block %v planned %v, want block %v planned %v", got.Block, got.Planned, tt.block, tt.planned)
			}
			if len(got.Violations) != len(tt.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(got.Violations), len(tt.want), dump(got.Violations))
			}
			for i, w := range tt.want {
				g := got.Violations[i]
				if g.Field != w.field || g.Rule != w.rule || !strings.Contains(g.Detail, w.detail) || g.Reason != tt.reason {
					t.Errorf("violation %d:\n got %s %s %s %q\nwant %s %s %s containing %q", i, g.Reason, g.Field, g.Rule, g.Detail, tt.reason, w.field, w.rule, w.detail)
				}
			}
		})
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func dump(vs []*eventv1.Violation) string {
	var sb strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&sb, "  %s %s %s: %s\n", v.Reason, v.Field, v.Rule, v.Detail)
	}
	return sb.String()
}

// TestCheckConcurrent checks that one compiled plan serves many goroutines
// (run with -race): the validator shares a plan between its workers.
func TestCheckConcurrent(t *testing.T) {
	p := planWith(t, "block", "allow")
	evs := []*eventv1.Event{
		track("Order Completed", `{"order_id":"o1","revenue":1,"items":[{"price":"x"}]}`),
		track("Strict", `{"b":1}`),
		withTraits(eventv1.EventType_EVENT_TYPE_IDENTIFY, `{"email":"x"}`),
		track("Nope", `{}`),
	}
	want := make([]int, len(evs))
	for i, ev := range evs {
		want[i] = len(p.Check(ev).Violations)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := (g + i) % len(evs)
				if n := len(p.Check(evs[k]).Violations); n != want[k] {
					t.Errorf("event %d: %d violations, want %d", k, n, want[k])
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCheckDoesNotModifyEvent: the event goes on to the next topic as it came.
func TestCheckDoesNotModifyEvent(t *testing.T) {
	p := planWith(t, "block", "block")
	props := `{"order_id":1,"revenue":"x"}`
	ev := track("Order Completed", props)
	p.Check(ev)
	if string(ev.PropertiesJson) != props || ev.Event != "Order Completed" {
		t.Fatalf("event modified: %v", ev)
	}
}
