package pii

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/firstparty/firstparty/pkg/jsonedit"
)

// Redaction is how personal data is shown to a reader who may not see it
// in clear: the profile API masks profiles, events and exports with it for
// admin keys without the pii:read scope (pkg/access). It masks — never
// drops — so a reader still sees that a field exists, and with MaskString's
// rules, so the result is deterministic and obviously masked
// ("ada@example.com" → "a***@example.com", "+4915112345678" → "+***8",
// "Ada Lovelace" → "A***e", numbers → null). Values a hash rule already
// replaced ("hmac:…") are pseudonymous and stay as they are.
//
// What it masks:
//
//   - identifiers of the types in RedactedIdentifierTypes (email, phone);
//   - the fields of DefaultRedactedPaths: the reserved traits that name or
//     reach a person (standardize renames every spelling to these keys),
//     in traits and context.traits, the email and phone a track call may
//     carry in properties, and the client IP;
//   - every path the workspace's PII rules name (pkg/sources, any action):
//     whoever wrote the rule said the field is personal. A rule that keeps
//     a field in storage still masks it for display.
type Redaction struct {
	paths [][]string
}

// RedactedIdentifierTypes are the identifier types whose values are
// personal data in themselves. user_id and anonymous_id are pseudonymous
// keys (a reader needs them to address the API at all) and stay.
var RedactedIdentifierTypes = map[string]bool{"email": true, "phone": true}

// redactedTraits are Segment's reserved user traits that identify, locate
// or contact a person (address covers city, country, postalCode, state,
// street beneath it). age, gender, company, title, website, createdAt and
// description are kept: alone they do not single a person out, and
// segments and reports need them.
var redactedTraits = []string{"email", "phone", "name", "firstName", "lastName", "username", "address", "birthday", "avatar"}

// DefaultRedactedPaths are the paths every Redaction masks.
var DefaultRedactedPaths = func() []string {
	var out []string
	for _, t := range redactedTraits {
		out = append(out, "traits."+t, "context.traits."+t)
	}
	return append(out, "properties.email", "properties.phone", "context.ip")
}()

// NewRedaction masks DefaultRedactedPaths and the paths of rules (a
// workspace's PII rules, all sources together). Paths that do not parse
// are ignored: the workspace file was validated when it was loaded.
func NewRedaction(rules []Rule) *Redaction {
	r := &Redaction{}
	seen := map[string]bool{}
	add := func(path string) {
		if seen[path] {
			return
		}
		if segs, err := parsePath(path); err == nil {
			seen[path] = true
			r.paths = append(r.paths, segs)
		}
	}
	for _, p := range DefaultRedactedPaths {
		add(p)
	}
	for _, rule := range rules {
		add(rule.Path)
	}
	return r
}

// Identifier returns the value of an identifier of type typ as the reader
// sees it.
func (r *Redaction) Identifier(typ, value string) string {
	if !RedactedIdentifierTypes[typ] || isHMAC(value) {
		return value
	}
	return MaskString(value)
}

// Document masks one free-form object of an event (root: "traits",
// "properties" or "context") and returns it; the input is not modified. A
// document that is not a JSON object cannot be searched and becomes null.
func (r *Redaction) Document(root string, doc []byte) []byte {
	if len(doc) == 0 {
		return doc
	}
	a := &applier{display: true, decided: map[string]bool{}, reported: map[string]bool{}}
	out := doc
	for _, segs := range r.paths {
		if segs[0] == root {
			a.document(&out, segs, Mask)
		}
	}
	if out == nil {
		return []byte("null")
	}
	return out
}

// String masks a typed copy of a field (an events row's context_ip
// column, say) when path is redacted.
func (r *Redaction) String(path, s string) string {
	want := strings.Split(path, ".")
	for _, segs := range r.paths {
		if len(segs) <= len(want) && matches(segs, want) {
			if isHMAC(s) {
				return s
			}
			return MaskString(s)
		}
	}
	return s
}

// Traits masks a profile's traits (trait name → JSON value), as the
// "traits" root of DefaultRedactedPaths and the workspace's rules name
// them; it returns a new map.
func (r *Redaction) Traits(traits map[string]json.RawMessage) map[string]json.RawMessage {
	keys := make([]string, 0, len(traits))
	for k := range traits {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	doc := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			doc = append(doc, ',')
		}
		doc = jsonedit.AppendString(doc, k)
		doc = append(doc, ':')
		if v := traits[k]; jsonedit.Valid(v) {
			doc = append(doc, v...)
		} else {
			doc = jsonedit.AppendString(doc, string(v)) // not JSON: shown, and masked, as a string
		}
	}
	doc = append(doc, '}')
	out := make(map[string]json.RawMessage, len(traits))
	o, err := jsonedit.ParseObject(r.Document("traits", doc))
	if err != nil {
		return out
	}
	for _, m := range o.Members {
		out[m.Key] = json.RawMessage(m.Value)
	}
	return out
}
