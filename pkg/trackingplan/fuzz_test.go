package trackingplan

import (
	"strings"
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// fuzzEvents are checked against every plan the fuzzer gets compiled: one
// of each type, the usual suspects in properties, and broken bytes.
var fuzzEvents = []*eventv1.Event{
	track("Order Completed", `{"order_id":"o1","total":12.5,"currency":"usd","products":[{"product_id":"p","price":-1,"quantity":1.5}],"x":null}`),
	track("Order Completed", ""),
	track("A", `{"n":123456789012345678901234567890,"f":1e400,"s":"\u00e9\ud83d\ude00","a":[[[[{}]]]],"b":true}`),
	track("", `{}`),
	track("true", `{"false":1}`),
	track("Order Completed", `{"order_id":`),
	track("Order Completed", `[]`),
	withTraits(eventv1.EventType_EVENT_TYPE_IDENTIFY, `{"email":"a@b.co","age":-1}`),
	withTraits(eventv1.EventType_EVENT_TYPE_IDENTIFY, `null`),
	withProps(eventv1.EventType_EVENT_TYPE_PAGE, `{"path":"/","url":"::"}`),
	withProps(eventv1.EventType_EVENT_TYPE_SCREEN, `{"name":5}`),
	withTraits(eventv1.EventType_EVENT_TYPE_GROUP, `{"name":"","employees":"many"}`),
	{Type: eventv1.EventType_EVENT_TYPE_ALIAS},
	{Type: eventv1.EventType(99)},
	nil,
}

// compactPlan is a small realistic plan: anchors, allOf, $defs, formats,
// every section.
const compactPlan = `id: shop-web
version: 3
violations: block
x-p: &p {type: object, required: [product_id], properties: {product_id: {type: string}, price: {type: number, minimum: 0}, quantity: {type: integer, minimum: 1}}}
events:
  Product Viewed: {properties: *p}
  Product Added: {properties: {allOf: [*p, {properties: {cart_id: {type: string}}}]}}
  Order Completed:
    properties:
      $defs: {money: {type: number, minimum: 0}}
      required: [order_id, total]
      additionalProperties: false
      properties: {order_id: {type: string, minLength: 1}, total: {$ref: "#/$defs/money"}, currency: {pattern: "^[A-Z]{3}$"}, products: {type: array, maxItems: 50, items: *p}}
  Signed Out: {}
identify: {traits: {properties: {email: {format: email}, plan: {enum: [free, pro]}}}}
page: {properties: {properties: {url: {format: uri}}}}
screen: {properties: {required: [name]}}
group: {traits: {properties: {employees: {type: integer}}}}
`

// FuzzCompile feeds Compile hostile definitions: it must never panic, must
// answer with a plan or an error (never both, never neither), and a plan it
// accepts must check events without panicking and with well-formed results.
func FuzzCompile(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes every input that finds new
	// coverage, and minimizing a plan of several KB takes the whole run.
	seeds := []string{
		compactPlan,
		`{"id":"a","version":1,"events":{"A":{"properties":{"properties":{"n":{"type":"integer","maximum":1e400}}}}}}`,
		plan("events:\n  A: {properties: {$defs: {a: {$ref: \"#/$defs/b\"}, b: {$ref: \"#/$defs/a\"}}, $ref: \"#/$defs/a\"}}\n"), // $ref cycle
		plan("events:\n  A: {properties: {$dynamicRef: \"#meta\", $dynamicAnchor: meta}}\n"),
		plan("events:\n  A: {properties: {properties: {s: {type: string, pattern: \"^(a+)+$\", format: regex}}}}\n"),
		plan("events:\n  A: {properties: {oneOf: [{type: object}, {required: [x]}], not: {const: {}}}}\n"),
		plan("events:\n  A: {properties: {prefixItems: [true], items: false, unevaluatedProperties: false, contains: {}, minContains: 0}}\n"),
		plan("events:\n  A: {properties: {if: {required: [a]}, then: {required: [b]}, else: false, dependentRequired: {a: [c]}}}\n"),
		plan("x-a: &a [*a]\n"), // recursive alias
		plan("x-a: &a {b: 1}\nx-b: &b [*a, *a, *a]\nx-c: [*b, *b, *b]\n"), // alias expansion
		plan("events:\n  A: {properties: {$schema: \"http://json-schema.org/draft-04/schema#\", properties: {x: {type: integer, exclusiveMinimum: true, minimum: 0}}}}\n"),
		orderCompleted("      properties:\n        revenue: {type: numbr}\n"),
		orderCompleted("      properties:\n        total: {$ref: \"https://schemas.example.com/money.json\"}\n"),
		"id: [shop\n",
		"id: shop\nversion: 0\nviolations: blok\n",
		plan("events:\n  on: {}\n  \"\": {}\n"),
		"",
		"null",
		"- 1",
		"{",
		strings.Repeat("[", 64) + strings.Repeat("]", 64),
		plan("events:\n  A:\n    properties:\n      " + strings.Repeat("{not: ", 64) + "{}" + strings.Repeat("}", 64) + "\n"),
	}
	if _, err := Compile([]byte(compactPlan)); err != nil {
		f.Fatalf("the compact seed plan does not compile: %v", err)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, def []byte) {
		p, err := Compile(def)
		if (p == nil) == (err == nil) {
			t.Fatalf("plan %v with error %v", p, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !idPattern.MatchString(p.ID) || p.Version < 1 {
			t.Fatalf("accepted plan %q version %d", p.ID, p.Version)
		}
		events := fuzzEvents
		for _, name := range sortedKeys(p.events)[:min(len(p.events), 3)] {
			events = append(events, track(name, `{"a":1}`))
		}
		for _, ev := range events {
			r := p.Check(ev)
			if len(r.Violations) > MaxViolations {
				t.Fatalf("%d violations", len(r.Violations))
			}
			if r.Block && len(r.Violations) == 0 {
				t.Fatal("blocked without a violation")
			}
			if !r.Planned && (ev.GetType() != eventv1.EventType_EVENT_TYPE_TRACK || len(r.Violations) != 1 || r.Violations[0].Reason != eventv1.Reason_REASON_UNPLANNED) {
				t.Fatalf("unplanned %v: %s", ev, dump(r.Violations))
			}
			if _, listed := p.events[ev.GetEvent()]; listed && ev.GetType() == eventv1.EventType_EVENT_TYPE_TRACK && !r.Planned {
				t.Fatalf("listed event %q not planned", ev.GetEvent())
			}
			for _, v := range r.Violations {
				if v.Rule == "" || v.Detail == "" || !strings.HasPrefix(v.Field, "/") || v.Reason == eventv1.Reason_REASON_UNSPECIFIED {
					t.Fatalf("imprecise violation %v", v)
				}
			}
		}
	})
}

// FuzzCheck feeds Check hostile properties and traits — what reaches the
// validator from any producer, not only from the collector — against plans
// that use every kind of keyword. It must never panic and every result must
// be well formed.
func FuzzCheck(f *testing.F) {
	var plans []*Plan
	for _, def := range []string{compactPlan, strings.NewReplacer("VIOLATIONS", "block", "UNPLANNED", "allow").Replace(testPlan),
		plan(`events:
  Every Keyword:
    properties:
      $defs: {pos: {type: number, exclusiveMinimum: 0}}
      type: object
      minProperties: 1
      maxProperties: 8
      propertyNames: {maxLength: 10}
      dependentRequired: {a: [b]}
      patternProperties: {"^x_": {type: string}}
      unevaluatedProperties: false
      properties:
        a: {oneOf: [{type: integer, multipleOf: 3}, {type: integer, multipleOf: 5}]}
        b: {not: {const: 0}}
        c: {type: array, prefixItems: [{type: string}], items: {$ref: "#/$defs/pos"}, uniqueItems: true, contains: {const: 1}, maxContains: 2}
        d: {if: {type: string}, then: {format: date-time}, else: {type: [number, "null"], maximum: 1e300}}
        e: {enum: [1, 1.5, "x", null, true, [1], {k: v}]}
`)} {
		p, err := Compile([]byte(def))
		if err != nil {
			f.Fatal(err)
		}
		plans = append(plans, p)
	}
	for _, s := range []string{
		`{"a":15,"b":0,"c":["s",1,1,1],"d":"2024-13-01","e":[1],"x_y":5,"zzzzzzzzzzzz":1}`,
		`{"order_id":"o1","total":1,"products":[{"product_id":"p","price":-1,"quantity":0}],"n":1.0,"max":9007199254740993}`,
		`{"a":1e9999999,"c":[1e-999999],"e":1.50,"revenue":1e400}`,
		`{"n":123456789012345678901234567890.0000000000000000001}`,
		`{"email":"a@b.co","age":"13","a00":null}`,
		`{"c":[` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `]}`,
		`{"\u0000":"\ud800","a/b~c":{"":[]}}`,
		`{"a":1,"a":2}`,
		`[1]`, `"x"`, `null`, ``, `{`, `{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, p := range plans {
			for _, ev := range []*eventv1.Event{
				track("Every Keyword", string(raw)), track("Order Completed", string(raw)), track("Big Number", string(raw)),
				track("Many Required", string(raw)), track("Product Added", string(raw)),
				withTraits(eventv1.EventType_EVENT_TYPE_IDENTIFY, string(raw)),
			} {
				r := p.Check(ev)
				if len(r.Violations) > MaxViolations || r.Block && len(r.Violations) == 0 {
					t.Fatalf("%d violations, block %v", len(r.Violations), r.Block)
				}
				if _, listed := p.events[ev.GetEvent()]; ev.GetType() == eventv1.EventType_EVENT_TYPE_TRACK && listed != r.Planned {
					t.Fatalf("event %q listed %v, planned %v", ev.GetEvent(), listed, r.Planned)
				}
				for _, v := range r.Violations {
					if v.Rule == "" || v.Detail == "" || !strings.HasPrefix(v.Field, "/") || v.Reason == eventv1.Reason_REASON_UNSPECIFIED {
						t.Fatalf("imprecise violation %v", v)
					}
					if v.Rule == "validator" {
						t.Fatalf("the library panicked: %v", v)
					}
				}
			}
		}
	})
}
