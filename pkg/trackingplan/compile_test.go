package trackingplan

import (
	"strings"
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// plan builds a definition with a valid header and the given body.
func plan(body string) string {
	return "id: shop-web\nversion: 3\n" + body
}

// orderCompleted builds a plan whose one event has the given properties
// schema (indented YAML under "properties:").
func orderCompleted(schema string) string {
	return plan("events:\n  Order Completed:\n    properties:\n" + schema)
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		def  string
		want []string // substrings of the error, all required
	}{
		{"bad YAML", "id: [shop\n", []string{"tracking plan: not valid YAML or JSON", "line 1"}},
		{"bad JSON", `{"id": "shop", "version": 3`, []string{"not valid YAML or JSON"}},
		{"duplicate key", "id: a\nversion: 1\nid: b\n", []string{`key "id" already set`}},
		{"empty", "", []string{"tracking plan: the definition is empty"}},
		{"not a mapping", "- id: a\n", []string{"tracking plan: expected a mapping"}},
		{"too large", plan("x-pad: " + strings.Repeat("a", MaxDefinitionBytes)), []string{"over the 4194304-byte limit"}},

		{"unknown key", plan("violatons: block\n"), []string{"tracking plan shop-web: ", `unknown key "violatons"`, "a plan has id, version, violations"}},
		{"keys are case-sensitive", "ID: shop\nid: shop\nversion: 1\n", []string{`unknown key "ID"`}},
		{"unknown key in an event", plan("events:\n  Order Completed:\n    propertes: {}\n"), []string{`events["Order Completed"]: unknown key "propertes" (the only key here is "properties")`}},
		{"unknown key in identify", plan("identify:\n  properties: {}\n"), []string{`identify: unknown key "properties" (the only key here is "traits")`}},
		{"unknown key in page", plan("page:\n  traits: {}\n"), []string{`page: unknown key "traits"`}},
		{"events not a mapping", plan("events: [Order Completed]\n"), []string{"events: expected a mapping, got [", "map each track event name"}},
		{"event not a mapping", plan("events:\n  Order Completed: true\n"), []string{`events["Order Completed"]: expected a mapping, got true`}},
		{"empty event name", plan("events:\n  \"\": {}\n"), []string{`events[""]: an event name cannot be empty`}},
		{"event name from a YAML boolean", plan("events:\n  on: {}\n"), []string{`events["true"]: the name "true" is what YAML makes of an unquoted`}},

		{"missing id", "version: 1\n", []string{"tracking plan: id: missing"}},
		{"bad id", "id: shop web\nversion: 1\n", []string{`tracking plan: id: "shop web" is not valid: use 1-64 letters`}},
		{"id too long", "id: " + strings.Repeat("a", 65) + "\nversion: 1\n", []string{"id: \"aaaa", "is not valid"}},
		{"id not a string", "id: {a: 1}\nversion: 1\n", []string{`id: {"a":1} is not valid`}},
		{"missing version", "id: shop\n", []string{"tracking plan shop: version: missing"}},
		{"version 0", "id: shop\nversion: 0\n", []string{"version: 0 is not valid: want a whole number from 1 to 4294967295"}},
		{"negative version", "id: shop\nversion: -2\n", []string{"version: -2 is not valid"}},
		{"fractional version", "id: shop\nversion: 1.5\n", []string{"version: 1.5 is not valid"}},
		{"version over uint32", "id: shop\nversion: 4294967296\n", []string{"version: 4294967296 is not valid"}},
		{"version as a string", "id: shop\nversion: \"3\"\n", []string{`version: "3" is not valid`}},

		{"violations policy typo", plan("violations: blok\n"), []string{`violations: "blok" is not valid: want "allow" or "block"`}},
		{"unplanned policy typo", plan("unplanned: Block\n"), []string{`unplanned: "Block" is not valid`}},
		{"policy not a string", plan("violations: true\n"), []string{"violations: true is not valid"}},

		{"invalid type name", orderCompleted("      properties:\n        revenue: {type: numbr}\n"),
			[]string{`tracking plan shop-web: events["Order Completed"].properties: /properties/revenue/type: "numbr" is not valid: expected one of "array", "boolean"`}},
		{"invalid minimum", orderCompleted("      properties:\n        revenue: {minimum: zero}\n"),
			[]string{`events["Order Completed"].properties: /properties/revenue/minimum: "zero" is not valid: expected number`}},
		{"invalid required", orderCompleted("      required: order_id\n"),
			[]string{`/required: "order_id" is not valid: expected array`}},
		{"invalid regex", orderCompleted("      properties:\n        sku: {pattern: \"([A-Z]\"}\n"),
			[]string{`/properties/sku/pattern: "([A-Z]" is not valid: expected format "regex"`, "missing closing )"}},
		{"schema not an object", orderCompleted("      5\n"), []string{`events["Order Completed"].properties: the schema 5 is not valid: expected boolean or object`}},
		{"traits schema", plan("identify:\n  traits: {properties: {age: {type: int}}}\n"), []string{`identify.traits: /properties/age/type: "int" is not valid`}},
		{"unknown keyword", orderCompleted("      requried: [order_id]\n"),
			[]string{`events["Order Completed"].properties: /requried: unknown JSON Schema keyword`}},
		{"unknown keyword deep inside", orderCompleted("      properties:\n        products:\n          items:\n            properties:\n              price: {type: number, minimun: 0}\n"),
			[]string{`/properties/products/items/properties/price/minimun: unknown JSON Schema keyword`}},
		{"unknown format", orderCompleted("      properties:\n        email: {type: string, format: emial}\n"),
			[]string{`/properties/email/format: format "emial" is not one this validator checks`, "date-time"}},
		{"property name from a YAML boolean", orderCompleted("      properties:\n        no: {type: string}\n"),
			[]string{`/properties/false: the name "false" is what YAML makes of an unquoted`}},
		{"missing local definition", orderCompleted("      properties:\n        total: {$ref: \"#/$defs/money\"}\n"),
			[]string{`events["Order Completed"].properties: json-pointer in "#/$defs/money" not found`}},

		{"remote $ref", orderCompleted("      properties:\n        total: {$ref: \"https://schemas.example.com/money.json\"}\n"),
			[]string{`events["Order Completed"].properties: "https://schemas.example.com/money.json" cannot be loaded: a tracking plan never loads schemas from elsewhere`, `"$ref": "#/$defs/money"`}},
		{"relative $ref", orderCompleted("      properties:\n        total: {$ref: \"money.json#/money\"}\n"),
			[]string{`"money.json" cannot be loaded`}},
		{"file $ref", orderCompleted("      properties:\n        total: {$ref: \"file:///etc/passwd\"}\n"),
			[]string{`"file:///etc/passwd" cannot be loaded`}},
		{"remote $ref under an $id", orderCompleted("      $id: \"https://schemas.example.com/order.json\"\n      properties:\n        total: {$ref: \"money.json\"}\n"),
			[]string{`"https://schemas.example.com/money.json" cannot be loaded`}},
		{"remote metaschema", orderCompleted("      $schema: \"https://schemas.example.com/meta\"\n"),
			[]string{`"https://schemas.example.com/meta" cannot be loaded`}},

		{"every problem is reported", "id: shop web\nversion: 0\nviolations: blok\nevents:\n  A: {properties: {type: numbr}}\n",
			[]string{"id: \"shop web\"", "version: 0", `violations: "blok"`, `events["A"].properties: /type: "numbr"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile([]byte(tt.def))
			if err == nil {
				t.Fatalf("compiled %q", tt.def)
			}
			if p != nil {
				t.Errorf("a plan came with the error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %v\ndoes not contain\n  %s", err, w)
				}
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	orderEvent := track("Order Completed", `{"total":-1}`)
	tests := []struct {
		name            string
		def             string
		ev              *eventv1.Event
		wantViolations  int
		block, unplanUB bool // expected policies
	}{
		{"JSON", `{"id":"shop-web","version":3,"violations":"block","unplanned":"block",
			"events":{"Order Completed":{"properties":{"properties":{"total":{"type":"number","minimum":0}}}}}}`,
			orderEvent, 1, true, true},
		{"policies default to allow", plan("events:\n  Order Completed: {properties: {properties: {total: {minimum: 0}}}}\n"),
			orderEvent, 1, false, false},
		{"null policies are the default", plan("violations:\nunplanned: null\nevents:\n  Order Completed:\n"),
			orderEvent, 0, false, false},
		{"local $defs", orderCompleted("      $defs: {money: {type: number, minimum: 0}}\n      properties: {total: {$ref: \"#/$defs/money\"}}\n"),
			orderEvent, 1, false, false},
		{"$id with a relative $ref to its own $defs", orderCompleted("      $id: \"https://schemas.example.com/order.json\"\n      $defs: {money: {minimum: 0}}\n      properties: {total: {$ref: \"order.json#/$defs/money\"}}\n"),
			orderEvent, 1, false, false},
		{"draft-07 schema from Segment Protocols", orderCompleted("      $schema: \"http://json-schema.org/draft-07/schema#\"\n      definitions: {money: {minimum: 0}}\n      properties: {total: {$ref: \"#/definitions/money\"}}\n"),
			orderEvent, 1, false, false},
		{"$ref to the 2020-12 metaschema is embedded, not fetched", orderCompleted("      properties: {total: {minimum: 0}, schema: {$ref: \"https://json-schema.org/draft/2020-12/schema\"}}\n"),
			orderEvent, 1, false, false},
		{"x- keys are annotations", "x-owner: growth\n" + plan("x-shapes:\n  money: &money {type: number, minimum: 0}\nevents:\n  Order Completed:\n    x-since: 2024-01\n    properties: {x-doc: see wiki, properties: {total: *money}}\n"),
			orderEvent, 1, false, false},
		{"boolean schema", orderCompleted("      false\n"), orderEvent, 1, false, false},
		{"annotations", orderCompleted("      title: Order\n      description: A completed order\n      $comment: v3\n      properties: {total: {description: EUR, examples: [1], deprecated: false, default: 0, minimum: 0}}\n"),
			orderEvent, 1, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile([]byte(tt.def))
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != "shop-web" || p.Version != 3 {
				t.Errorf("id %q version %d", p.ID, p.Version)
			}
			if p.blockViolations != tt.block || p.blockUnplanned != tt.unplanUB {
				t.Errorf("policies block violations %v, unplanned %v; want %v, %v", p.blockViolations, p.blockUnplanned, tt.block, tt.unplanUB)
			}
			r := p.Check(tt.ev)
			if len(r.Violations) != tt.wantViolations || !r.Planned {
				t.Errorf("got %+v, want %d violations", r, tt.wantViolations)
			}
		})
	}
}
