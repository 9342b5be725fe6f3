package trackingplan

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaURL is where the compiler files each schema. Every schema gets a
// compiler of its own, so schemas of one plan never see each other (an $id
// used twice is harmless), and a relative $ref ("money.json") resolves to a
// document under this made-up scheme that the loader refuses like any other.
const schemaURL = "plan:///schema.json"

// errExternalRef is what the compiler's loader answers for every URL. Only
// the metaschemas of the supported drafts resolve, and the library embeds
// those: compiling a plan never touches the network or the disk.
var errExternalRef = errors.New(`a tracking plan never loads schemas from elsewhere; ` +
	`refer only to this schema's own definitions, e.g. "$ref": "#/$defs/money"`)

type refusingLoader struct{}

func (refusingLoader) Load(string) (any, error) { return nil, errExternalRef }

// compileSchema compiles one schema of the plan; where is its place in the
// plan ("events[\"Order Completed\"].properties") for errors.
func compileSchema(raw []byte, where string) (*jsonschema.Schema, error) {
	// The library's own decoder keeps numbers as json.Number, so "minimum"
	// and "multipleOf" keep their exact value.
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := checkKeywords(doc, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refusingLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", where, compileProblem(err, doc))
	}
	return sch, nil
}

// compileProblem says what is wrong with a schema the library refused, in
// terms of the schema as written: a JSON pointer into it, the offending
// value, and what was expected there.
func compileProblem(err error, doc any) string {
	var load *jsonschema.LoadURLError
	if errors.As(err, &load) {
		return fmt.Sprintf("%q cannot be loaded: %v", strings.TrimPrefix(load.URL, "plan:///"), errExternalRef)
	}
	var invalid *jsonschema.SchemaValidationError
	var verr *jsonschema.ValidationError
	if errors.As(err, &invalid) && errors.As(invalid.Err, &verr) {
		fs := findings(verr, doc, true, nil)
		// Alternatives of the metaschema (anyOf, oneOf) fail at several
		// depths; the deepest location is the one the author must fix, and
		// the first finding there comes from the alternative meant first.
		var msgs []string
		seen := map[string]bool{}
		for _, f := range fs {
			ptr := pointer(f.at)
			if seen[ptr] || slices.ContainsFunc(fs, func(g finding) bool { return deeper(g.at, f.at) }) {
				continue
			}
			seen[ptr] = true
			v, _ := valueAt(doc, f.at)
			msg := fmt.Sprintf("%s: %s is not valid: %s", ptr, literal(v), f.want)
			if ptr == "" {
				msg = fmt.Sprintf("the schema %s is not valid: %s", literal(v), f.want)
			}
			if f.why != "" {
				msg += " (" + f.why + ")"
			}
			msgs = append(msgs, msg)
		}
		slices.Sort(msgs)
		if len(msgs) > 0 {
			return strings.Join(msgs, "; ")
		}
	}
	return strings.ReplaceAll(err.Error(), schemaURL, "")
}

// deeper reports whether location a is strictly inside location b.
func deeper(a, b []string) bool {
	return len(a) > len(b) && slices.Equal(a[:len(b)], b)
}

// Every keyword of drafts 4 to 2020-12, and where each keeps its
// subschemas. JSON Schema ignores keywords it does not know, which in a
// tracking plan turns a typo ("requried", "maxLenght") into a rule that
// silently checks nothing; so a plan may use only these, plus annotations
// named "x-…".
var (
	keywords = set(`
		$schema $id id $ref $anchor $dynamicRef $dynamicAnchor $recursiveRef $recursiveAnchor
		$vocabulary $comment $defs definitions
		allOf anyOf oneOf not if then else dependentSchemas dependencies prefixItems items
		additionalItems contains properties patternProperties additionalProperties propertyNames
		unevaluatedItems unevaluatedProperties
		type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum
		maxLength minLength pattern maxItems minItems uniqueItems maxContains minContains
		maxProperties minProperties required dependentRequired
		format contentEncoding contentMediaType contentSchema
		title description default deprecated readOnly writeOnly examples`)
	// Keywords whose value is a schema ("items": or, before 2020-12, an array of them).
	schemaKeywords = set(`not if then else items additionalItems contains additionalProperties
		propertyNames unevaluatedItems unevaluatedProperties contentSchema`)
	// Keywords whose value maps names to schemas.
	schemaMapKeywords = set(`$defs definitions properties patternProperties dependentSchemas dependencies`)
	// Keywords whose value is an array of schemas.
	schemaListKeywords = set(`allOf anyOf oneOf prefixItems`)

	// Formats the library asserts (its format.go, plus "regex").
	formats = strings.Fields(`date date-time duration email hostname ipv4 ipv6 iri iri-reference
		json-pointer period regex relative-json-pointer semver time uri uri-reference uri-template uuid`)
)

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// checkKeywords refuses keywords JSON Schema does not define anywhere in the
// schema v (at location at). Values that are not schemas where a schema is
// expected are left to the metaschema, which reports them better.
func checkKeywords(v any, at []string) error {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for _, k := range sortedKeys(obj) {
		if !keywords[k] && !strings.HasPrefix(k, "x-") {
			return fmt.Errorf("%s: unknown JSON Schema keyword (it would check nothing; name annotations \"x-…\")", pointer(child(at, k)))
		}
	}
	if f, ok := obj["format"].(string); ok && !slices.Contains(formats, f) {
		return fmt.Errorf("%s: format %q is not one this validator checks (it would check nothing); use one of %s",
			pointer(child(at, "format")), f, strings.Join(formats, ", "))
	}
	for _, k := range sortedKeys(obj) {
		sub := child(at, k)
		var err error
		switch val := obj[k].(type) {
		case map[string]any:
			switch {
			case schemaKeywords[k]:
				err = checkKeywords(val, sub)
			case schemaMapKeywords[k]:
				for _, name := range sortedKeys(val) {
					if err = yamlBoolKey(name); err != nil {
						err = fmt.Errorf("%s: %w", pointer(child(sub, name)), err)
						break
					}
					if err = checkKeywords(val[name], child(sub, name)); err != nil {
						break
					}
				}
			}
		case []any:
			if schemaListKeywords[k] || k == "items" { // items: an array of schemas before 2020-12
				for i, s := range val {
					if err = checkKeywords(s, child(sub, strconv.Itoa(i))); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// yamlBoolKey refuses the names "true" and "false". YAML 1.1 reads an
// unquoted y, yes, on, n, no, off (any case) as a boolean, and a boolean key
// turns into "true" or "false": a property "n" would silently become a
// property "false". A real property of that name is rarer than the mistake.
func yamlBoolKey(name string) error {
	if name != "true" && name != "false" {
		return nil
	}
	return fmt.Errorf(`the name %q is what YAML makes of an unquoted y, yes, on, n, no or off; `+
		`quote the name (e.g. "on": …) — names "true" and "false" are not allowed`, name)
}
