// Package pii applies a source's personal-data policy to an event: for each
// named field, keep it, mask it, drop it or replace it with a keyed hash. It
// is part of the validator's pure core (no I/O): after the consent check and
// standardize, and before the event is written to cdp.events.valid, so
// nothing downstream — stitcher, segmenter, ClickHouse — sees what the
// policy removes. Because standardize runs first, "traits.email" catches
// every spelling standardize recognises, and hashes of emails and phone
// numbers are computed on one canonical form, so they still join.
//
// # Paths
//
// A rule's path starts at traits, properties or context and names object
// keys separated by dots: "traits.email", "properties.card.number",
// "context.ip", "context.traits.phone". A segment "*" matches every key at
// its level ("properties.*.ssn"). Keys are matched exactly (case matters);
// a key that itself contains a dot cannot be named. A path may name an
// object or array; the action then covers everything beneath it.
//
// Rules act where they point: for an identify call the collector copies
// context.traits into traits when the call has none of its own, so a policy
// that protects a trait names both "traits.email" and "context.traits.email".
//
// Arrays are transparent: a path continues into every element, so
// "properties.products.sku" reaches each product's sku. Reported paths show
// the element ("properties.products[0].sku"). A path through a value that is
// neither object nor array, or to a key that is absent, does nothing.
//
// Paths under context also act on the typed copies the collector made of
// those fields (Event.Context): context.ip, context.userAgent,
// context.device.id, context.device.advertisingId, context.page.url,
// context.page.referrer, context.page.search and context.externalIds.id;
// a rule naming their container ("context.device", "context.*") covers
// them too.
//
// # Actions
//
//   - keep: leave the field as it is. Useful because rules are read in
//     order and, for each field, the first rule that names it decides: keep
//     "traits.email" then hash "traits.*" hashes every trait but the email.
//     A later mask or hash of a container leaves alone what an earlier rule
//     decided beneath it; a later drop of the container removes it whole.
//   - drop: remove the key (every occurrence, if the key was sent twice).
//   - mask: strings keep their first and last character with "***" between
//     ("Johnathan" → "J***n"); a fixed three stars, so the mask does not
//     reveal the length. Strings of one or two characters become "***".
//     Emails keep the first character of the local part and the domain
//     ("ada@example.com" → "a***@example.com"; a local part of one or two
//     characters becomes "***"). IP addresses keep their network: the last
//     octet of IPv4 and all but the first 48 bits of IPv6 become zero
//     ("203.0.113.7" → "203.0.113.0"), which keeps geolocation coarse and
//     useful. Numbers and booleans become null: no part of a number is safe
//     to show, a string "4***1" would break every consumer that expects a
//     number, and 0 would be a plausible value that silently skews sums,
//     averages and segment conditions (age < 18), while null reads as
//     "unknown" everywhere. null and "" stay as they are.
//   - hash: replace the value with "hmac:" and the hex HMAC-SHA256 of its
//     text under the workspace secret. A plain hash of an email or a phone
//     number is not anonymous: the set of plausible emails is small enough to
//     hash them all and look the digest up, so a plain SHA-256 is reversible
//     by dictionary. The keyed hash is as joinable as the value (equal values,
//     equal hashes, within a workspace) but cannot be reversed without the
//     secret; rotating the secret breaks the joins. Numbers are hashed as
//     the text they were sent as (42 and 42.0 differ), booleans as
//     "true"/"false"; null and "" stay. A value that already is an
//     "hmac:<64 hex>" string is left alone, so applying a policy twice
//     changes nothing. With an empty secret, hash drops the field instead:
//     an unkeyed hash would look safe and not be.
//
// A free-form object that does not parse as a JSON object cannot be
// searched, so when a rule names it, it is removed whole (fail closed) and
// its root ("properties") is reported as changed.
//
// Changed objects are rewritten through jsonedit: everything the policy does
// not touch keeps its key order, number text and escapes.
package pii

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/firstparty/firstparty/pkg/jsonedit"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// Action is what a rule does to the fields it names.
type Action string

const (
	Keep Action = "keep"
	Mask Action = "mask"
	Drop Action = "drop"
	Hash Action = "hash"
)

// Rule applies Action to the fields Path names.
type Rule struct {
	Path   string `json:"path" yaml:"path"`
	Action Action `json:"action" yaml:"action"`
}

// Policy is one source's rules, read in order.
type Policy struct {
	Rules []Rule `json:"rules" yaml:"rules"`
}

var roots = map[string]bool{"traits": true, "properties": true, "context": true}

// Validate reports the first rule that is not usable, by index.
func (p Policy) Validate() error {
	seen := map[string]int{}
	for i, r := range p.Rules {
		switch r.Action {
		case Keep, Mask, Drop, Hash:
		default:
			return fmt.Errorf("rule %d (%s): unknown action %q; use keep, mask, drop or hash", i, r.Path, r.Action)
		}
		if _, err := parsePath(r.Path); err != nil {
			return fmt.Errorf("rule %d: %w", i, err)
		}
		if j, ok := seen[r.Path]; ok {
			return fmt.Errorf("rule %d: path %q is already named by rule %d; the first rule would always win", i, r.Path, j)
		}
		seen[r.Path] = i
	}
	return nil
}

func parsePath(path string) ([]string, error) {
	segs := strings.Split(path, ".")
	if !roots[segs[0]] || len(segs) < 2 {
		return nil, fmt.Errorf("path %q must name a field under traits, properties or context, e.g. traits.email", path)
	}
	for _, s := range segs[1:] {
		if s == "" {
			return nil, fmt.Errorf("path %q has an empty segment", path)
		}
		if s != "*" && strings.Contains(s, "*") {
			return nil, fmt.Errorf("path %q: \"*\" must be a whole segment (it matches every key at its level)", path)
		}
	}
	return segs, nil
}

// Apply applies the policy to ev in place and returns the paths it changed,
// in the order it changed them. It expects a validated policy; a rule whose
// path does not parse is skipped, and one with an unknown action drops its
// fields (fail closed).
func (p Policy) Apply(ev *eventv1.Event, secret []byte) []string {
	if ev == nil {
		return nil
	}
	a := &applier{secret: secret, decided: map[string]bool{}, reported: map[string]bool{}}
	for _, r := range p.Rules {
		segs, err := parsePath(r.Path)
		if err != nil {
			continue
		}
		action := r.Action
		switch {
		case action == Hash && len(secret) == 0, action != Keep && action != Mask && action != Hash:
			action = Drop
		}
		var doc *[]byte
		switch segs[0] {
		case "traits":
			doc = &ev.TraitsJson
		case "properties":
			doc = &ev.PropertiesJson
		case "context":
			doc = &ev.ContextJson
			a.typed(ev.Context, segs[1:], action)
		}
		a.document(doc, segs, action)
	}
	return a.changed
}

type applier struct {
	secret []byte
	// display: masking for a reader (Redaction), not for storage: a value
	// a hash rule already replaced ("hmac:…") is pseudonymous and stays.
	display  bool
	decided  map[string]bool // internal keys of fields an earlier rule decided
	reported map[string]bool
	changed  []string
}

func (a *applier) report(path string) {
	if !a.reported[path] {
		a.reported[path] = true
		a.changed = append(a.changed, path)
	}
}

// document applies one rule to one free-form object.
func (a *applier) document(doc *[]byte, segs []string, action Action) {
	if len(*doc) == 0 || jsonedit.IsNull(*doc) {
		return
	}
	if jsonedit.KindOf(*doc) != jsonedit.ObjectKind {
		a.failClosed(doc, segs[0])
		return
	}
	out, changed, err := a.walk(*doc, segs[1:], segs[0], segs[0], action)
	if err != nil {
		a.failClosed(doc, segs[0])
		return
	}
	if changed {
		*doc = out
	}
}

func (a *applier) failClosed(doc *[]byte, root string) {
	*doc = nil
	a.report(root)
}

// walk finds the members segs names below v (path: the reported path; key:
// the internal one, unambiguous whatever the keys contain) and applies
// action to them.
func (a *applier) walk(v []byte, segs []string, path, key string, action Action) ([]byte, bool, error) {
	switch jsonedit.KindOf(v) {
	case jsonedit.Array:
		return a.eachItem(v, path, key, func(item []byte, path, key string) ([]byte, bool, error) {
			return a.walk(item, segs, path, key, action)
		})
	case jsonedit.ObjectKind:
	default:
		return v, false, nil
	}
	o, err := jsonedit.ParseObject(v)
	if err != nil {
		return v, false, err
	}
	changed := false
	var decided []string // marked after the loop, so a key sent twice is handled twice
	kept := o.Members[:0]
	for _, m := range o.Members {
		if segs[0] != "*" && m.Key != segs[0] {
			kept = append(kept, m)
			continue
		}
		mpath, mkey := path+"."+m.Key, key+"\x00"+m.Key
		if a.decided[mkey] {
			kept = append(kept, m)
			continue
		}
		if len(segs) > 1 {
			out, ch, err := a.walk(m.Value, segs[1:], mpath, mkey, action)
			if err != nil {
				return v, false, err
			}
			if ch {
				m.Value, changed = out, true
			}
			kept = append(kept, m)
			continue
		}
		decided = append(decided, mkey)
		switch action {
		case Keep:
		case Drop:
			changed = true
			a.report(mpath)
			continue // not kept
		default:
			out, ch, err := a.transform(m.Value, mkey, action)
			if err != nil {
				return v, false, err
			}
			if ch {
				m.Value, changed = out, true
				a.report(mpath)
			}
		}
		kept = append(kept, m)
	}
	for _, k := range decided {
		a.decided[k] = true
	}
	if !changed {
		return v, false, nil
	}
	o.Members = kept
	return o.AppendTo(make([]byte, 0, len(v))), true, nil
}

func (a *applier) eachItem(v []byte, path, key string, f func(item []byte, path, key string) ([]byte, bool, error)) ([]byte, bool, error) {
	items, err := jsonedit.ParseArray(v)
	if err != nil {
		return v, false, err
	}
	changed := false
	for i, item := range items {
		idx := "[" + strconv.Itoa(i) + "]"
		out, ch, err := f(item, path+idx, key+"\x00"+idx)
		if err != nil {
			return v, false, err
		}
		if ch {
			items[i], changed = out, true
		}
	}
	if !changed {
		return v, false, nil
	}
	return jsonedit.AppendArray(make([]byte, 0, len(v)), items), true, nil
}

// transform masks or hashes v and every value beneath it that no earlier
// rule decided.
func (a *applier) transform(v []byte, key string, action Action) ([]byte, bool, error) {
	switch jsonedit.KindOf(v) {
	case jsonedit.Null:
		return v, false, nil
	case jsonedit.Array:
		return a.eachItem(v, "", key, func(item []byte, _, key string) ([]byte, bool, error) {
			return a.transform(item, key, action)
		})
	case jsonedit.ObjectKind:
		o, err := jsonedit.ParseObject(v)
		if err != nil {
			return v, false, err
		}
		changed := false
		for i := range o.Members {
			m := &o.Members[i]
			mkey := key + "\x00" + m.Key
			if a.decided[mkey] {
				continue
			}
			out, ch, err := a.transform(m.Value, mkey, action)
			if err != nil {
				return v, false, err
			}
			if ch {
				m.Value, changed = out, true
			}
		}
		if !changed {
			return v, false, nil
		}
		return o.AppendTo(make([]byte, 0, len(v))), true, nil
	case jsonedit.String:
		s, _ := jsonedit.StringValue(v)
		out, ch := a.scalar(s, action)
		if !ch {
			return v, false, nil
		}
		return jsonedit.AppendString(nil, out), true, nil
	default: // number, boolean
		if action == Mask {
			return []byte("null"), true, nil
		}
		text, _ := jsonedit.Text(v)
		return jsonedit.AppendString(nil, a.hash(text)), true, nil
	}
}

// scalar masks or hashes a string; "" stays.
func (a *applier) scalar(s string, action Action) (string, bool) {
	if s == "" {
		return s, false
	}
	var out string
	switch action {
	case Mask:
		if a.display && isHMAC(s) {
			return s, false
		}
		out = MaskString(s)
	case Hash:
		if isHMAC(s) {
			return s, false
		}
		out = a.hash(s)
	default:
		return s, false
	}
	return out, out != s
}

func (a *applier) hash(text string) string {
	return HMAC(a.secret, text)
}

// HMAC is the hash action's output for text: "hmac:" and the hex
// HMAC-SHA256 under secret. Exported so that a lookup ("find the profile
// with this email") can hash the same way.
func HMAC(secret []byte, text string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(text))
	var sum [sha256.Size]byte
	return "hmac:" + hex.EncodeToString(m.Sum(sum[:0]))
}

func isHMAC(s string) bool {
	if len(s) != len("hmac:")+2*sha256.Size || !strings.HasPrefix(s, "hmac:") {
		return false
	}
	for _, c := range s[len("hmac:"):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// MaskString is the mask action's output for a string; see the package doc.
func MaskString(s string) string {
	if s == "" || strings.Trim(s, "*") == "" {
		return s
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		bits := 24 // IPv4: the /24, as analytics tools anonymise
		switch {
		case ip.Is4In6():
			bits = 96 + 24
		case ip.Is6():
			bits = 48
		}
		if p, err := ip.Prefix(bits); err == nil {
			return p.Addr().String()
		}
	}
	if at := strings.LastIndexByte(s, '@'); at > 0 && at < len(s)-1 {
		local := s[:at]
		if utf8.RuneCountInString(local) <= 2 || strings.Trim(local, "*") == "" {
			return "***" + s[at:]
		}
		first, n := utf8.DecodeRuneInString(local)
		if local[n:] == "***" {
			return s // already masked
		}
		return string(first) + "***" + s[at:]
	}
	if utf8.RuneCountInString(s) <= 2 {
		return "***"
	}
	first, n := utf8.DecodeRuneInString(s)
	last, m := utf8.DecodeLastRuneInString(s)
	if s[n:len(s)-m] == "***" {
		return s // already masked
	}
	return string(first) + "***" + string(last)
}
