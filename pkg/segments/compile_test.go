package segments

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCompileErrors(t *testing.T) {
	const head = "id: s\nversion: 1\nname: S\n"
	tests := []struct {
		name, src string
		want      []string // substrings the error must contain
	}{
		{"not yaml", "id: [", []string{"parsing segment definition"}},
		{"unknown key", head + "conditon: true\n", []string{"unknown field", "conditon"}},
		{"bad id", "id: Bad ID\nversion: 1\nname: S\ncondition: 'true'\n", []string{`id "Bad ID"`}},
		{"long id", "id: " + strings.Repeat("a", 65) + "\nversion: 1\nname: S\ncondition: 'true'\n", []string{"1-64"}},
		{"no version", "id: s\nname: S\ncondition: 'true'\n", []string{"version"}},
		{"negative version", "id: s\nversion: -1\nname: S\ncondition: 'true'\n", []string{"parsing"}},
		{"no name", "id: s\nversion: 1\ncondition: 'true'\n", []string{"name"}},
		{"no condition", head, []string{"condition: must not be empty"}},
		{"bad CEL", head + "condition: 'traits.plan == '\n", []string{"condition:", "Syntax error"}},
		{"unknown variable", head + "condition: cart_adds_1h >= 1 && orders == 0\n", []string{"unknown name(s) cart_adds_1h, orders", "declare it under aggregates"}},
		{"wrong types", head + "condition: views == \"x\"\naggregates:\n  views: {count: {event: V}}\n", []string{"no matching overload"}},
		{"not a bool", head + "condition: views + 1\naggregates:\n  views: {count: {event: V}}\n", []string{"must be a bool", "int"}},
		{"bad window", head + "condition: views > 1\naggregates:\n  views: {count: {event: V, within: 7x}}\n", []string{`bad duration "7x"`}},
		{"window not a string", head + "condition: views > 1\naggregates:\n  views: {count: {event: V, within: 7}}\n", []string{"duration must be a string"}},
		{"window too short", head + "condition: views > 1\naggregates:\n  views: {count: {event: V, within: 10s}}\n", []string{"aggregate views", "shorter than the minimum"}},
		{"window too long", head + "condition: views > 1\naggregates:\n  views: {count: {event: V, within: 500d}}\n", []string{"longer than the maximum"}},
		{"negative window", head + "condition: views > 1\naggregates:\n  views: {count: {event: V, within: -1h}}\n", []string{"shorter than the minimum"}},
		{"absence without within", head + "condition: a\naggregates:\n  a: {absence: {after: A, missing: B}}\n", []string{"within: required"}},
		{"absence without missing", head + "condition: a\naggregates:\n  a: {absence: {after: A, within: 1h}}\n", []string{"after and missing"}},
		{"inactive without within", head + "condition: a\naggregates:\n  a: {inactive: {}}\n", []string{"within: required"}},
		{"no kind", head + "condition: a\naggregates:\n  a: {}\n", []string{"no kind"}},
		{"two kinds", head + "condition: a > 0\naggregates:\n  a: {count: {}, sum: {property: x}}\n", []string{"several kinds"}},
		{"unknown kind", head + "condition: a > 0\naggregates:\n  a: {average: {}}\n", []string{"unknown field", "average"}},
		{"sum without property", head + "condition: a > 0.0\naggregates:\n  a: {sum: {event: O}}\n", []string{"property is required"}},
		{"where not a bool", head + "condition: a > 0\naggregates:\n  a: {count: {where: 'properties.x + 1'}}\n", []string{"where: must be a bool"}},
		{"where reads traits", head + "condition: a > 0\naggregates:\n  a: {count: {where: 'traits.plan == \"pro\"'}}\n", []string{"where: unknown name(s) traits"}},
		{"where bad CEL", head + "condition: a > 0\naggregates:\n  a: {count: {where: '(('}}\n", []string{"where:"}},
		{"bad type", head + "condition: a > 0\naggregates:\n  a: {count: {type: click}}\n", []string{`type "click"`}},
		{"reserved name", head + "condition: now > timestamp(0)\naggregates:\n  now: {last_seen: {}}\n", []string{`aggregate "now"`}},
		{"yaml boolean name", head + "condition: 'true'\naggregates:\n  y: {last_seen: {}}\n", []string{"YAML reads"}},
		{"bad name", head + "condition: 'true'\naggregates:\n  Views: {last_seen: {}}\n", []string{`aggregate "Views"`}},
		{"unused aggregate", head + "condition: a > 0\naggregates:\n  a: {count: {}}\n  b: {count: {}}\n", []string{"aggregates b: declared but not used"}},
		{"bad recheck", head + "recheck: 1s\ncondition: 'true'\n", []string{"recheck"}},
		{"too long", head + "condition: '" + strings.Repeat("true && ", 1000) + "true'\n", []string{"condition:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]byte(tc.src))
			if err == nil {
				t.Fatal("compiled, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCompileExample(t *testing.T) {
	// The example from the issue, all five kinds at once, in YAML and JSON.
	yamlSrc := `
id: abandoned-cart
version: 1
name: Abandoned cart
condition: 'abandoned && cart_adds_1h >= 1 && views_audio_7d >= 0 && revenue_90d >= 0.0 && last_event > timestamp(0) && !quiet && traits.plan == "pro"'
aggregates:
  cart_adds_1h:   {count: {event: "Cart Added", within: 1h}}
  views_audio_7d: {count: {event: "Product Viewed", where: 'properties.category == "audio"', within: 168h}}
  revenue_90d:    {sum: {event: "Order Completed", property: revenue, within: 2160h}}
  last_event:     {last_seen: {}}
  abandoned:      {absence: {after: "Cart Added", missing: "Order Completed", within: 1h}}
  quiet:          {inactive: {within: 720h}}
`
	s, err := Compile([]byte(yamlSrc))
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "abandoned-cart" || s.Version != 1 || len(s.Aggregates()) != 6 {
		t.Fatalf("compiled %+v", s.Aggregates())
	}
	jsonSrc := `{"id":"j","version":2,"name":"J","condition":"n >= 2","aggregates":{"n":{"count":{"event":"E","within":"30d"}}}}`
	if _, err := Compile([]byte(jsonSrc)); err != nil {
		t.Fatal(err)
	}
}

func TestReadsProfile(t *testing.T) {
	for _, tc := range []struct {
		def  string
		want bool
	}{
		{`{id: a, version: 1, name: A, condition: 'traits.plan == "pro"'}`, true},
		{`{id: a, version: 1, name: A, condition: '"user_id:1" in identities'}`, true},
		{`{id: a, version: 1, name: A, condition: 'now - first_seen < duration("24h")'}`, true},
		{`{id: a, version: 1, name: A, condition: 'orders >= 1', aggregates: {orders: {count: {event: "Order Completed"}}}}`, false},
		{`{id: a, version: 1, name: A, condition: 'true'}`, false},
	} {
		s, err := Compile([]byte(tc.def))
		if err != nil {
			t.Fatal(err)
		}
		if seen := strings.Contains(tc.def, "_seen"); s.ReadsSeen() != seen {
			t.Errorf("%s: ReadsSeen() = %v, want %v", tc.def, s.ReadsSeen(), seen)
		}
		if s.ReadsProfile() != tc.want {
			t.Errorf("%s: ReadsProfile() = %v, want %v", tc.def, s.ReadsProfile(), tc.want)
		}
	}
}

func TestWhenEmpty(t *testing.T) {
	for _, tc := range []struct {
		def       string
		value, ok bool
	}{
		{`{id: a, version: 1, name: A, condition: 'orders >= 1', aggregates: {orders: {count: {event: "Order Completed"}}}}`, false, true},
		{`{id: a, version: 1, name: A, condition: 'orders == 0', aggregates: {orders: {count: {event: "Order Completed"}}}}`, true, true},
		{`{id: a, version: 1, name: A, condition: 'quiet', aggregates: {quiet: {inactive: {within: 30d}}}}`, false, true},
		{`{id: a, version: 1, name: A, condition: 'has(traits.plan)'}`, false, false},
		{`{id: a, version: 1, name: A, condition: 'now > timestamp("2030-01-01T00:00:00Z")'}`, false, false},
	} {
		s, err := Compile([]byte(tc.def))
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := s.WhenEmpty(); v != tc.value || ok != tc.ok {
			t.Errorf("%s: WhenEmpty() = %v, %v; want %v, %v", tc.def, v, ok, tc.value, tc.ok)
		}
	}
}

// Conditions whose cost CEL can bound from the largest possible inputs run
// without run-time cost tracking; the others keep the limit, and it stops
// them.
func TestCostTracking(t *testing.T) {
	for _, tc := range []struct {
		cond    string
		tracked bool
	}{
		{`traits.plan == "pro" && identities.exists(i, i.startsWith("user_id:"))`, false},
		{`has(traits.email) && traits.country in ["CN", "DE"]`, false},
		{`now - last_seen > duration("720h")`, false},
		{`traits.tags.all(a, traits.tags.all(b, a == b))`, true},
		{`traits.a == traits.b`, true}, // comparing two unbounded strings
	} {
		s, err := Compile([]byte(`{id: s, version: 1, name: S, condition: '` + tc.cond + `'}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.cond, err)
		}
		if s.costTracked != tc.tracked {
			t.Errorf("%s: cost tracked = %v, want %v", tc.cond, s.costTracked, tc.tracked)
		}
	}
	for name, def := range Templates() {
		if s, err := Compile(def); err != nil || s.costTracked {
			t.Errorf("template %s: err %v, cost tracked %v; want a bounded cost", name, err, s != nil && s.costTracked)
		}
	}
	s, err := Compile([]byte(`{id: s, version: 1, name: S, condition: 'traits.tags.all(a, traits.tags.all(b, a == b))'}`))
	if err != nil {
		t.Fatal(err)
	}
	tags := make([]string, 2000)
	for i := range tags {
		tags[i] = `"x"`
	}
	p := Profile{ID: "p", Traits: map[string]json.RawMessage{"tags": json.RawMessage("[" + strings.Join(tags, ",") + "]")}}
	if _, err := s.Evaluate(&State{}, p, time.Now()); err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("4 M comparisons: err = %v, want the cost limit", err)
	}
}
