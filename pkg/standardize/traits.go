package standardize

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/firstparty/firstparty/pkg/jsonedit"
)

// valueRule standardizes one canonical member's value. It returns the new
// value and true when it changed it, and reports what it cannot fix.
type valueRule func(s *standardizer, v []byte, pointer string) ([]byte, bool)

// table is a set of reserved traits: their spellings and value rules.
type table struct {
	canonical map[string]string // normalized spelling → canonical key
	rules     map[string]valueRule
}

// newTable builds a table from canonical key → extra spellings (normalized;
// the canonical key's own normalized form is always included).
func newTable(spellings map[string][]string, rules map[string]valueRule) *table {
	t := &table{canonical: map[string]string{}, rules: rules}
	for canon, alts := range spellings {
		t.canonical[normalize(canon)] = canon
		for _, a := range alts {
			t.canonical[a] = canon
		}
	}
	return t
}

// The lists are documented in doc.go; keep the two in step.
var (
	userTraits = newTable(map[string][]string{
		"address":     nil,
		"age":         nil,
		"avatar":      {"avatarurl"},
		"birthday":    {"birthdate", "dateofbirth", "dob"},
		"company":     nil,
		"createdAt":   nil,
		"description": nil,
		"email":       {"emailaddress"},
		"firstName":   {"givenname"},
		"gender":      nil,
		"id":          nil,
		"lastName":    {"surname", "familyname"},
		"name":        {"fullname"},
		"phone":       {"phonenumber", "mobile", "mobilephone", "mobilenumber", "telephone"},
		"title":       {"jobtitle"},
		"username":    nil,
		"website":     nil,
	}, map[string]valueRule{
		"address":   address,
		"age":       age,
		"birthday":  timestamp,
		"createdAt": timestamp,
		"email":     email,
		"phone":     phone,
	})

	groupTraits = newTable(map[string][]string{
		"address":     nil,
		"avatar":      {"avatarurl"},
		"createdAt":   nil,
		"description": nil,
		"email":       {"emailaddress"},
		"employees":   nil,
		"id":          nil,
		"industry":    nil,
		"name":        nil,
		"phone":       {"phonenumber", "mobile", "mobilephone", "mobilenumber", "telephone"},
		"plan":        nil,
		"website":     nil,
	}, map[string]valueRule{
		"address":   address,
		"createdAt": timestamp,
		"email":     email,
		"phone":     phone,
	})

	addressTraits = newTable(map[string][]string{
		"city":       nil,
		"country":    nil,
		"postalCode": {"zip", "zipcode", "postcode"},
		"state":      {"province"},
		"street":     {"streetaddress"},
	}, nil)
)

// address standardizes the keys inside an address object; any other value
// is left alone.
func address(s *standardizer, v []byte, pointer string) ([]byte, bool) {
	if jsonedit.KindOf(v) != jsonedit.ObjectKind {
		return v, false
	}
	return s.object(v, addressTraits, pointer)
}

// maxSpelling bounds the keys worth normalizing; no spelling is longer.
const maxSpelling = 32

// normalize lower-cases key and drops spaces, underscores, hyphens and dots;
// "" for keys that are never renamed (too long, or "_"/"$"-prefixed).
func normalize(key string) string {
	if key == "" || len(key) > maxSpelling || key[0] == '_' || key[0] == '$' {
		return ""
	}
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		switch {
		case r == ' ' || r == '_' || r == '-' || r == '.':
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteByte(byte(r))
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// rename gives reserved traits their canonical key; see the package doc for
// who wins when spellings collide. It reports whether anything changed.
func (t *table) rename(o *jsonedit.Object) bool {
	var present map[string]bool // canonical keys sent or already renamed to
	changed := false
	for i := range o.Members {
		m := &o.Members[i]
		canon, ok := t.canonical[normalize(m.Key)]
		if !ok || canon == m.Key {
			continue
		}
		if present == nil {
			present = make(map[string]bool, len(o.Members))
			for j := range o.Members {
				present[o.Members[j].Key] = true
			}
		}
		if present[canon] {
			continue
		}
		m.Key = canon
		present[canon] = true
		changed = true
	}
	return changed
}
