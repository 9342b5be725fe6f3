// Package trackingplan turns tracking plans — per-source rules for what
// events may look like — into compiled JSON Schema validators, and checks
// events against them. It is the validator stage's pure core for plans: no
// I/O, no network, no clock; the validator service loads plan definitions,
// calls Compile once per plan version and Check once per event from
// cdp.events.raw, and routes the event to cdp.events.valid (tagged with the
// violations an "allow" plan tolerates) or cdp.events.invalid.
//
// A plan is data, YAML or JSON:
//
//	id: shop-web            # [a-zA-Z0-9_.-]{1,64}
//	version: 3              # 1 … 4294967295
//	violations: block       # allow (tag the event, let it through) | block; default allow
//	unplanned: allow        # track events whose name is not listed: allow | block; default allow
//	events:                 # track events, by exact name
//	  "Order Completed":
//	    properties: {…}     # JSON Schema (draft 2020-12) for the properties object
//	  "Signed Out": {}      # planned, any properties
//	identify: {traits: {…}}
//	page:     {properties: {…}}
//	screen:   {properties: {…}}
//	group:    {traits: {…}}
//
// Schemas are draft 2020-12 unless they name another draft in "$schema"
// (so draft-07 schemas from Segment Protocols paste in unchanged). "format"
// is asserted, because a plan author who writes "format: email" means it.
// References must stay inside the schema ("#/$defs/money"): a plan never
// loads anything from the network or the disk. Keywords JSON Schema does not
// know are refused — a misspelt "requried" would otherwise silently check
// nothing — and so are keys of the plan it does not know; keys starting with
// "x-" are left alone everywhere, for annotations and for YAML anchors of
// shared shapes:
//
//	x-shapes:
//	  money: &money {type: number, minimum: 0}
//	events:
//	  "Order Completed": {properties: {properties: {total: *money}}}
//
// YAML is YAML 1.1 (sigs.k8s.io/yaml): an unquoted y, yes, on, n, no or off
// is a boolean. As a name (of an event, a property, a definition) it would
// silently become "true" or "false", so those two names are refused; in an
// enum it becomes true or false, so quote such strings.
package trackingplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// MaxDefinitionBytes bounds a plan definition. A large ecommerce plan
// (hundreds of events) is a few hundred KB; the bound keeps a hostile
// definition from costing the validator more than a moment to compile.
const MaxDefinitionBytes = 4 << 20

// Policy values for "violations" and "unplanned".
const (
	PolicyAllow = "allow"
	PolicyBlock = "block"
)

// Plan is a compiled tracking plan. It is immutable and safe for concurrent
// use by any number of goroutines.
type Plan struct {
	ID      string
	Version uint32

	blockViolations bool
	blockUnplanned  bool
	// events maps every planned track event name to its properties schema;
	// a nil schema means "planned, any properties".
	events   map[string]*jsonschema.Schema
	identify *jsonschema.Schema // traits
	page     *jsonschema.Schema // properties
	screen   *jsonschema.Schema // properties
	group    *jsonschema.Schema // traits
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// Keys a definition may have, per level (besides "x-…"). Checked by hand
// rather than by sigs.k8s.io/yaml's strict struct decode: encoding/json
// matches keys case-insensitively ("ID" would pass for "id") and its
// unknown-field error does not say where the key was.
var (
	planKeys = []string{"id", "version", "violations", "unplanned", "events", "identify", "page", "screen", "group"}
	// The one schema each section holds. Track events, under "events",
	// hold "properties".
	sectionKeys = map[string]string{"identify": "traits", "page": "properties", "screen": "properties", "group": "traits"}
)

// Compile parses a plan definition (YAML or JSON) and compiles every schema
// in it. The error lists every problem found, each naming where it is in the
// plan, e.g.
//
//	events["Order Completed"].properties: /properties/revenue/type: "numbr" is not valid: …
func Compile(def []byte) (*Plan, error) {
	if len(def) > MaxDefinitionBytes {
		return nil, fmt.Errorf("tracking plan: %d bytes is over the %d-byte limit", len(def), MaxDefinitionBytes)
	}
	j, err := yaml.YAMLToJSONStrict(def)
	if err != nil {
		return nil, fmt.Errorf("tracking plan: not valid YAML or JSON: %w", err)
	}
	top, err := object(j)
	if err != nil {
		return nil, fmt.Errorf("tracking plan: %w", err)
	}
	if top == nil {
		return nil, errors.New("tracking plan: the definition is empty")
	}

	var errs []error
	fail := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	for _, k := range sortedKeys(top) {
		if !slices.Contains(planKeys, k) && !strings.HasPrefix(k, "x-") {
			errs = append(errs, fmt.Errorf("unknown key %q (a plan has %s)", k, strings.Join(planKeys, ", ")))
		}
	}

	p := &Plan{events: map[string]*jsonschema.Schema{}}
	var id string
	if raw, ok := top["id"]; !ok {
		fail("id", "missing; name the plan with 1-64 letters, digits, '_', '.' or '-'")
	} else if err := json.Unmarshal(raw, &id); err != nil || !idPattern.MatchString(id) {
		fail("id", "%s is not valid: use 1-64 letters, digits, '_', '.' or '-'", clip(raw))
	}
	p.ID = id

	if raw, ok := top["version"]; !ok {
		fail("version", "missing; number plan versions from 1")
	} else if v, err := strconv.ParseUint(string(raw), 10, 32); err != nil || v < 1 {
		fail("version", "%s is not valid: want a whole number from 1 to %d", clip(raw), math.MaxUint32)
	} else {
		p.Version = uint32(v)
	}

	policy := func(key string) bool {
		raw, ok := top[key]
		if !ok || string(raw) == "null" {
			return false
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s != PolicyAllow && s != PolicyBlock {
			fail(key, "%s is not valid: want %q or %q", clip(raw), PolicyAllow, PolicyBlock)
		}
		return s == PolicyBlock
	}
	p.blockViolations = policy("violations")
	p.blockUnplanned = policy("unplanned")

	if raw, ok := top["events"]; ok {
		events, err := object(raw)
		if err != nil {
			fail("events", "%v; map each track event name to its definition", err)
		}
		for _, name := range sortedKeys(events) {
			where := fmt.Sprintf("events[%s]", strconv.Quote(name))
			if name == "" {
				fail(where, "an event name cannot be empty")
				continue
			}
			if err := yamlBoolKey(name); err != nil {
				fail(where, "%v", err)
				continue
			}
			sch, err := compileSection(events[name], where, "properties")
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.events[name] = sch
		}
	}
	for _, sec := range []struct {
		name string
		dst  **jsonschema.Schema
	}{{"identify", &p.identify}, {"page", &p.page}, {"screen", &p.screen}, {"group", &p.group}} {
		raw, ok := top[sec.name]
		if !ok {
			continue
		}
		sch, err := compileSection(raw, sec.name, sectionKeys[sec.name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*sec.dst = sch
	}

	if len(errs) > 0 {
		if id == "" || !idPattern.MatchString(id) {
			return nil, fmt.Errorf("tracking plan: %w", errors.Join(errs...))
		}
		return nil, fmt.Errorf("tracking plan %s: %w", id, errors.Join(errs...))
	}
	return p, nil
}

// compileSection compiles an entry that holds at most one schema, under key
// (properties or traits). A null or empty entry, or a null schema, means no
// schema: anything goes.
func compileSection(raw json.RawMessage, where, key string) (*jsonschema.Schema, error) {
	sec, err := object(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; want {%s: <JSON Schema>}", where, err, key)
	}
	for _, k := range sortedKeys(sec) {
		if k != key && !strings.HasPrefix(k, "x-") {
			return nil, fmt.Errorf("%s: unknown key %q (the only key here is %q)", where, k, key)
		}
	}
	sch, ok := sec[key]
	if !ok || string(sch) == "null" {
		return nil, nil
	}
	return compileSchema(sch, where+"."+key)
}

// object decodes a JSON object into its members, keeping each value raw.
// null decodes to a nil map.
func object(j []byte) (map[string]json.RawMessage, error) {
	j = bytes.TrimSpace(j)
	if string(j) == "null" {
		return nil, nil
	}
	if len(j) == 0 || j[0] != '{' {
		return nil, fmt.Errorf("expected a mapping, got %s", clip(j))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// clip shows a raw JSON value in an error, bounded.
func clip(raw []byte) string { return truncate(string(bytes.TrimSpace(raw)), 40) }

// truncate bounds s to about n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
