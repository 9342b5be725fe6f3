package trackingplan

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// MaxViolations is the most violations Check reports for one event: enough
// to fix an instrumentation bug, bounded so one malformed event cannot bloat
// its DLQ record. Which ones are kept is deterministic (the first by field).
const MaxViolations = 20

// Result is what a plan says about one event.
type Result struct {
	// Violations found, at most MaxViolations, ordered by field. Field is a
	// JSON pointer from the event root ("/properties/products/0/price",
	// "/traits/email"; identify traits the collector took from
	// context.traits are still "/traits"); Rule is the JSON Schema keyword
	// that failed. Reason is
	//   - REASON_SCHEMA_VIOLATION for a schema failure;
	//   - REASON_UNPLANNED (field "/event", rule "unplanned") for a track
	//     event the plan does not list;
	//   - REASON_FORMAT_VIOLATION (rule "json") when the properties or
	//     traits are not a JSON object, or hold a number no real event
	//     carries (see maxExponent); rule "validator" if the schema library
	//     ever panics on an event.
	Violations []*eventv1.Violation
	// Block is true when the event must be rejected: it has violations and
	// the plan's policy for them is block. Format violations are always
	// blocked, whatever the policy: there was nothing the plan could check,
	// and every later stage would have to parse the same bytes.
	Block bool
	// Planned is true when the event matched a plan entry. Every non-track
	// event is planned: the plan either has a schema for its type or
	// accepts it as it is.
	Planned bool
}

// Check checks ev against the plan. It reads only ev's type, event name,
// properties and traits (raw JSON; empty or null means {}), never modifies
// ev, and never fails: every problem is a violation. Properties or traits
// are decoded only when the plan has a schema for them.
func (p *Plan) Check(ev *eventv1.Event) Result {
	switch ev.GetType() {
	case eventv1.EventType_EVENT_TYPE_TRACK:
		sch, ok := p.events[ev.GetEvent()]
		if !ok {
			return Result{
				Violations: []*eventv1.Violation{{
					Reason: eventv1.Reason_REASON_UNPLANNED, Field: "/event", Rule: "unplanned",
					Detail: fmt.Sprintf("track event %s is not in tracking plan %s v%d", strconv.Quote(truncate(ev.GetEvent(), 100)), p.ID, p.Version),
				}},
				Block: p.blockUnplanned,
			}
		}
		return p.validate(sch, "properties", ev.GetPropertiesJson())
	case eventv1.EventType_EVENT_TYPE_IDENTIFY:
		return p.validate(p.identify, "traits", ev.GetTraitsJson())
	case eventv1.EventType_EVENT_TYPE_PAGE:
		return p.validate(p.page, "properties", ev.GetPropertiesJson())
	case eventv1.EventType_EVENT_TYPE_SCREEN:
		return p.validate(p.screen, "properties", ev.GetPropertiesJson())
	case eventv1.EventType_EVENT_TYPE_GROUP:
		return p.validate(p.group, "traits", ev.GetTraitsJson())
	default: // alias and anything newer: no schema
		return Result{Planned: true}
	}
}

// validate checks the JSON object raw, found at /root in the event, against
// sch (nil: anything goes).
func (p *Plan) validate(sch *jsonschema.Schema, root string, raw []byte) (r Result) {
	if sch == nil {
		return Result{Planned: true}
	}
	undecodable := func(field, format string, args ...any) Result {
		return Result{
			Violations: []*eventv1.Violation{{
				Reason: eventv1.Reason_REASON_FORMAT_VIOLATION, Field: field, Rule: "json",
				Detail: fmt.Sprintf(format, args...),
			}},
			Block:   true,
			Planned: true,
		}
	}
	doc, err := decodeObject(raw)
	if err != nil {
		return undecodable("/"+root, "%s must be a JSON object: %v", root, err)
	}
	if !numbersCheckable(doc) {
		at, n, _ := uncheckableNumber(doc, nil)
		return undecodable("/"+escape(root)+pointer(at),
			"number %s is beyond what a tracking plan checks: at most %d characters, exponent within ±%d", truncate(string(n), 40), maxNumberLen, maxExponent)
	}
	// The library has no business panicking on a decoded JSON value, but if
	// one event ever makes it, that event goes to the DLQ with the reason
	// and the validator lives on.
	defer func() {
		if x := recover(); x != nil {
			r = Result{
				Violations: []*eventv1.Violation{{
					Reason: eventv1.Reason_REASON_FORMAT_VIOLATION, Field: "/" + root, Rule: "validator",
					Detail: fmt.Sprintf("the schema validator failed on these %s (%v); the event is held back for inspection", root, x),
				}},
				Block:   true,
				Planned: true,
			}
		}
	}()
	err = sch.Validate(doc)
	if err == nil {
		return Result{Planned: true}
	}
	var verr *jsonschema.ValidationError
	var vs []*eventv1.Violation
	if errors.As(err, &verr) {
		vs = violations(findings(verr, doc, false, nil), "/"+escape(root))
	}
	if len(vs) == 0 {
		// Validate only ever returns *ValidationError with at least one
		// leaf; keep the event's fate explicit should that change.
		vs = []*eventv1.Violation{{Reason: eventv1.Reason_REASON_SCHEMA_VIOLATION, Field: "/" + root, Rule: "schema", Detail: err.Error()}}
	}
	return Result{Violations: vs, Block: p.blockViolations, Planned: true}
}

// Bounds on the numbers Check validates. The library compares numbers as
// exact big.Rat values: an exponent of a million costs it ~50 ms per
// number (a 32 KB event holds thousands), and one beyond that makes it
// panic. No real event carries such numbers — they are outside float64 and
// every later stage would choke on them — so they are refused outright.
const (
	maxNumberLen = 100
	maxExponent  = 400
)

// numbersCheckable reports whether every number in v is within the bounds
// above. It is the hot path: no allocation.
func numbersCheckable(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return numberCheckable(v)
	case map[string]any:
		for _, e := range v {
			if !numbersCheckable(e) {
				return false
			}
		}
	case []any:
		for _, e := range v {
			if !numbersCheckable(e) {
				return false
			}
		}
	}
	return true
}

func numberCheckable(n json.Number) bool {
	if len(n) > maxNumberLen {
		return false
	}
	if i := strings.IndexAny(string(n), "eE"); i >= 0 {
		exp, err := strconv.Atoi(string(n[i+1:]))
		return err == nil && exp <= maxExponent && exp >= -maxExponent
	}
	return true
}

// uncheckableNumber finds the first number outside the bounds, taking
// object keys in order so the report is deterministic, and where it is.
func uncheckableNumber(v any, at []string) ([]string, json.Number, bool) {
	switch v := v.(type) {
	case json.Number:
		if !numberCheckable(v) {
			return at, v, true
		}
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if a, n, found := uncheckableNumber(v[k], child(at, k)); found {
				return a, n, true
			}
		}
	case []any:
		for i, e := range v {
			if a, n, found := uncheckableNumber(e, child(at, strconv.Itoa(i))); found {
				return a, n, true
			}
		}
	}
	return nil, "", false
}

// decodeObject decodes properties or traits with the library's decoder,
// which keeps numbers as json.Number: an integer beyond 2^53 stays an
// integer and 0.1 stays exactly 0.1.
func decodeObject(raw []byte) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	switch doc.(type) {
	case map[string]any:
		return doc, nil
	case nil: // "properties": null is how some SDKs say "none"
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("got %s", show(doc))
}

// violations turns findings into the event's violations: pointers from the
// event root, ordered, deduplicated, capped.
func violations(fs []finding, prefix string) []*eventv1.Violation {
	slices.SortStableFunc(fs, func(a, b finding) int {
		return cmp.Or(compareLocations(a.at, b.at), strings.Compare(a.rule, b.rule), strings.Compare(a.detail(), b.detail()))
	})
	fs = slices.CompactFunc(fs, func(a, b finding) bool {
		return slices.Equal(a.at, b.at) && a.rule == b.rule && a.detail() == b.detail()
	})
	if len(fs) > MaxViolations {
		fs = fs[:MaxViolations]
	}
	vs := make([]*eventv1.Violation, len(fs))
	for i, f := range fs {
		vs[i] = &eventv1.Violation{Reason: eventv1.Reason_REASON_SCHEMA_VIOLATION, Field: prefix + pointer(f.at), Rule: f.rule, Detail: f.detail()}
	}
	return vs
}

// compareLocations orders locations token by token, array indexes by
// number, so /items/2 comes before /items/10.
func compareLocations(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		x, errX := strconv.Atoi(a[i])
		y, errY := strconv.Atoi(b[i])
		if errX == nil && errY == nil {
			return cmp.Compare(x, y)
		}
		return strings.Compare(a[i], b[i])
	}
	return cmp.Compare(len(a), len(b))
}

// finding is one leaf failure of a validation: where in the instance, which
// keyword, and a sentence saying what was expected and what was there.
type finding struct {
	at   []string
	rule string
	want string // "expected …", or a whole sentence when got is empty
	got  string
	why  string // what the check said about the value, if it said more
}

func (f finding) detail() string {
	d := f.want
	if f.got != "" {
		d += ", got " + f.got
	}
	if f.why != "" {
		d += " (" + f.why + ")"
	}
	return d
}

// findings flattens the library's tree of errors into leaf failures. Groups,
// allOf and $ref only gather failures that each hold on their own, so they
// are looked through. The branches of a failed anyOf or oneOf are not
// failures on their own — satisfying any one branch fixes the value — so
// each failed anyOf/oneOf is one finding, unless through is set (to find the
// deepest cause of a metaschema failure).
func findings(e *jsonschema.ValidationError, doc any, through bool, out []finding) []finding {
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			out = findings(c, doc, through, out)
		}
		return out
	case *kind.AnyOf, *kind.OneOf:
		if through && len(e.Causes) > 0 {
			for _, c := range e.Causes {
				out = findings(c, doc, through, out)
			}
			return out
		}
		if o, ok := k.(*kind.OneOf); ok && len(o.Subschemas) == 2 {
			return append(out, finding{at: e.InstanceLocation, rule: "oneOf",
				want: fmt.Sprintf("expected exactly one alternative of oneOf to match, but alternatives %d and %d both match", o.Subschemas[0], o.Subschemas[1])})
		}
		rule := e.ErrorKind.KeywordPath()[0]
		return append(out, finding{at: e.InstanceLocation, rule: rule, want: alternatives(e, doc, rule)})
	}
	return describe(e, doc, out)
}

// alternatives explains a failed anyOf/oneOf by the first failure of each of
// its first few alternatives.
func alternatives(e *jsonschema.ValidationError, doc any, rule string) string {
	const shown = 3
	var why []string
	for i, c := range e.Causes {
		if i == shown {
			why = append(why, "…")
			break
		}
		fs := findings(c, doc, false, nil)
		if len(fs) == 0 {
			continue
		}
		slices.SortStableFunc(fs, func(a, b finding) int { return compareLocations(a.at, b.at) })
		d := fs[0].detail()
		if rel := fs[0].at[min(len(e.InstanceLocation), len(fs[0].at)):]; len(rel) > 0 {
			d = "at " + pointer(rel) + " " + d
		}
		why = append(why, d)
	}
	return fmt.Sprintf("expected a value matching one of the %d alternatives of %s (%s)", len(e.Causes), rule, strings.Join(why, "; or "))
}

var printer = message.NewPrinter(language.English)

// describe turns one leaf error into findings: one per missing or extra
// property, so every field pointer is exact.
func describe(e *jsonschema.ValidationError, doc any, out []finding) []finding {
	at := e.InstanceLocation
	v, found := valueAt(doc, at)
	got := ""
	if found {
		got = show(v)
	}
	add := func(at []string, rule, want, got string) {
		out = append(out, finding{at: at, rule: rule, want: want, got: got})
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Type:
		add(at, "type", "expected "+strings.Join(k.Want, " or "), got)
	case *kind.Required:
		for _, name := range k.Missing {
			add(child(at, name), "required", fmt.Sprintf("required property %s is missing", strconv.Quote(name)), "")
		}
	case *kind.Enum:
		add(at, "enum", "expected "+oneOf(k.Want), got)
	case *kind.Const:
		add(at, "const", "expected "+literal(k.Want), got)
	case *kind.Minimum:
		add(at, "minimum", "expected a number >= "+rat(k.Want), got)
	case *kind.Maximum:
		add(at, "maximum", "expected a number <= "+rat(k.Want), got)
	case *kind.ExclusiveMinimum:
		add(at, "exclusiveMinimum", "expected a number > "+rat(k.Want), got)
	case *kind.ExclusiveMaximum:
		add(at, "exclusiveMaximum", "expected a number < "+rat(k.Want), got)
	case *kind.MultipleOf:
		add(at, "multipleOf", "expected a multiple of "+rat(k.Want), got)
	case *kind.MinLength:
		add(at, "minLength", "expected at least "+count(k.Want, "character"), fmt.Sprintf("%s (%s)", got, count(k.Got, "character")))
	case *kind.MaxLength:
		add(at, "maxLength", "expected at most "+count(k.Want, "character"), fmt.Sprintf("%s (%s)", got, count(k.Got, "character")))
	case *kind.Pattern:
		add(at, "pattern", "expected a string matching "+strconv.Quote(k.Want), got)
	case *kind.Format:
		out = append(out, finding{at: at, rule: "format", want: fmt.Sprintf("expected format %q", k.Want), got: got, why: fmt.Sprint(k.Err)})
	case *kind.MinItems:
		add(at, "minItems", "expected at least "+count(k.Want, "item"), count(k.Got, "item"))
	case *kind.MaxItems:
		add(at, "maxItems", "expected at most "+count(k.Want, "item"), count(k.Got, "item"))
	case *kind.UniqueItems:
		add(at, "uniqueItems", fmt.Sprintf("expected unique items, but items %d and %d are equal", k.Duplicates[0], k.Duplicates[1]), "")
	case *kind.MinProperties:
		add(at, "minProperties", "expected at least "+count(k.Want, "property"), count(k.Got, "property"))
	case *kind.MaxProperties:
		add(at, "maxProperties", "expected at most "+count(k.Want, "property"), count(k.Got, "property"))
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			add(child(at, name), "additionalProperties", fmt.Sprintf("property %s is not allowed: the schema lists its properties and allows no others", strconv.Quote(name)), "")
		}
	case *kind.DependentRequired:
		for _, name := range k.Missing {
			add(child(at, name), "dependentRequired", fmt.Sprintf("property %s is required when %s is present", strconv.Quote(name), strconv.Quote(k.Prop)), "")
		}
	case *kind.Dependency:
		for _, name := range k.Missing {
			add(child(at, name), "dependencies", fmt.Sprintf("property %s is required when %s is present", strconv.Quote(name), strconv.Quote(k.Prop)), "")
		}
	case *kind.PropertyNames:
		add(child(at, k.Property), "propertyNames", fmt.Sprintf("property name %s is not allowed by propertyNames", strconv.Quote(k.Property)), "")
	case *kind.FalseSchema:
		// The false schema's own location says which keyword holds it:
		// additionalProperties, unevaluatedProperties, items, …
		kw := "false"
		if _, frag, ok := strings.Cut(e.SchemaURL, "#"); ok {
			toks := strings.Split(frag, "/")
			last := toks[len(toks)-1]
			named := len(toks) >= 2 && schemaMapKeywords[toks[len(toks)-2]] // properties: {items: false}
			if schemaKeywords[last] && !named {
				kw = last
			}
		}
		switch {
		case len(at) > 0 && strings.HasSuffix(kw, "Properties"):
			add(at, kw, fmt.Sprintf("property %s is not allowed by %s", strconv.Quote(at[len(at)-1]), kw), "")
		case len(at) > 0 && (kw == "items" || strings.HasSuffix(kw, "Items")):
			add(at, kw, fmt.Sprintf("item %s is not allowed by %s", at[len(at)-1], kw), "")
		default:
			add(at, kw, "no value is allowed here", got)
		}
	case *kind.Not:
		add(at, "not", "expected a value that does not match the schema under not", got)
	case *kind.Contains:
		add(at, "contains", "expected at least one item matching contains", "none")
	case *kind.AdditionalItems:
		add(at, "additionalItems", fmt.Sprintf("the last %s are not allowed by additionalItems", count(k.Count, "item")), "")
	default:
		rule := "schema"
		if kp := e.ErrorKind.KeywordPath(); len(kp) > 0 {
			rule = kp[0]
		}
		add(at, rule, e.ErrorKind.LocalizedString(printer), "")
	}
	return out
}

// valueAt finds the value at a location of the decoded document.
func valueAt(doc any, at []string) (any, bool) {
	v := doc
	for _, tok := range at {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// show describes a value for a detail: its type and, for scalars, the value.
func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case json.Number:
		return "number " + truncate(string(v), 40)
	case string:
		return "string " + literal(v)
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// literal renders a value as it would appear in JSON, bounded.
func literal(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return truncate(string(v), 40)
	case string:
		return strconv.Quote(truncate(v, 64))
	case map[string]any:
		return "{…}"
	case []any:
		return "[…]"
	}
	return fmt.Sprint(v)
}

func oneOf(want []any) string {
	if len(want) == 1 {
		return literal(want[0])
	}
	const shown = 10
	var ss []string
	for i, w := range want {
		if i == shown {
			ss = append(ss, fmt.Sprintf("… (%d in all)", len(want)))
			break
		}
		ss = append(ss, literal(w))
	}
	return "one of " + strings.Join(ss, ", ")
}

// rat renders a schema's number as its author would have written it.
func rat(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return strconv.Itoa(n) + " " + noun[:len(noun)-1] + "ies"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func child(at []string, tok string) []string {
	return append(at[:len(at):len(at)], tok)
}

// pointer renders a location as a JSON pointer (RFC 6901).
func pointer(at []string) string {
	var sb strings.Builder
	for _, tok := range at {
		sb.WriteByte('/')
		sb.WriteString(escape(tok))
	}
	return sb.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func escape(tok string) string { return pointerEscaper.Replace(tok) }
