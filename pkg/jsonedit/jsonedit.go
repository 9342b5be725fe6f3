// Package jsonedit edits JSON objects without re-encoding what it does not
// touch. The validator's rules (standardize, pii) rewrite a few members of the
// free-form objects an SDK sent (traits, properties, context); everything else
// must reach ClickHouse as it was sent: key order, duplicate keys, number text
// (12345678901234567890 stays exact), string escapes.
//
// An Object is one level of members whose values are kept as raw JSON text;
// a caller that wants to edit deeper parses a member's value again. Parsing is
// strict (the grammar of RFC 8259, as encoding/json accepts it) and bounded in
// depth, so whatever ParseObject accepts, AppendTo writes back as valid JSON.
//
// It lives under standardize only because the change that introduced it was
// limited to that directory; it belongs in pkg/jsonedit, and moving it is a
// pure rename.
package jsonedit

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxDepth bounds the nesting ParseObject accepts. The collector refuses more
// than 32 levels, so this only stops hostile input from outside that path.
const MaxDepth = 256

// Object is a JSON object's members in the order they were sent. Duplicate
// keys are kept as they are: which one a reader honours is undefined, and
// rewriting them is not this package's decision.
type Object struct {
	Members []Member
}

// Member is one key and its value as raw JSON text. Set Key to rename the
// member and Value to replace it (with valid JSON, e.g. from AppendString);
// an unchanged key is written back with the escapes it was sent with.
type Member struct {
	Key   string
	Value []byte

	rawKey  []byte // the key as sent, quotes included
	origKey string // Key as parsed, to tell whether it was renamed
}

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("invalid JSON")

func syntaxErr(b []byte, i int, format string, args ...any) error {
	return fmt.Errorf("%w at byte %d of %d: %s", ErrSyntax, i, len(b), fmt.Sprintf(format, args...))
}

// ParseObject parses b, which must hold exactly one JSON object (surrounding
// whitespace allowed). The member values alias b.
func ParseObject(b []byte) (*Object, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, syntaxErr(b, i, "not a JSON object")
	}
	o := &Object{}
	end, err := scanObject(b, i, 1, o)
	if err != nil {
		return nil, err
	}
	if j := skipSpace(b, end); j != len(b) {
		return nil, syntaxErr(b, j, "data after the object")
	}
	return o, nil
}

// ParseArray parses b, which must hold exactly one JSON array, into its
// elements as raw JSON text (aliasing b).
func ParseArray(b []byte) ([][]byte, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, syntaxErr(b, i, "not a JSON array")
	}
	var items [][]byte
	end, err := scanArray(b, i, 1, &items)
	if err != nil {
		return nil, err
	}
	if j := skipSpace(b, end); j != len(b) {
		return nil, syntaxErr(b, j, "data after the array")
	}
	return items, nil
}

// Valid reports whether b is exactly one valid JSON value.
func Valid(b []byte) bool {
	i := skipSpace(b, 0)
	end, err := scanValue(b, i, 0)
	return err == nil && skipSpace(b, end) == len(b)
}

// AppendTo appends the object as compact JSON (member values as they are).
func (o *Object) AppendTo(dst []byte) []byte {
	dst = append(dst, '{')
	for i := range o.Members {
		m := &o.Members[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		if m.rawKey != nil && m.Key == m.origKey {
			dst = append(dst, m.rawKey...)
		} else {
			dst = AppendString(dst, m.Key)
		}
		dst = append(dst, ':')
		dst = append(dst, m.Value...)
	}
	return append(dst, '}')
}

// Has reports whether a member is called key.
func (o *Object) Has(key string) bool {
	for i := range o.Members {
		if o.Members[i].Key == key {
			return true
		}
	}
	return false
}

// Add appends a member; value must be valid JSON.
func (o *Object) Add(key string, value []byte) {
	o.Members = append(o.Members, Member{Key: key, Value: value})
}

// AppendArray appends items (each valid JSON) as a JSON array.
func AppendArray(dst []byte, items [][]byte) []byte {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	return append(dst, ']')
}

// Kind is the type of a JSON value, told by its first byte.
type Kind byte

const (
	Invalid Kind = iota
	Null
	Bool
	Number
	String
	ObjectKind
	Array
)

// KindOf returns the kind of the valid JSON value v, told by its first
// byte: on text that may be invalid it is only a guess.
func KindOf(v []byte) Kind {
	i := skipSpace(v, 0)
	if i >= len(v) {
		return Invalid
	}
	switch c := v[i]; {
	case c == 'n':
		return Null
	case c == 't' || c == 'f':
		return Bool
	case c == '"':
		return String
	case c == '{':
		return ObjectKind
	case c == '[':
		return Array
	case c == '-' || c >= '0' && c <= '9':
		return Number
	}
	return Invalid
}

// IsNull reports whether b is exactly the JSON literal null (surrounding
// white space allowed). Unlike KindOf it checks the whole text, so it is
// safe on input that may not be valid.
func IsNull(b []byte) bool { return string(trimSpace(b)) == "null" }

// StringValue returns the text of the JSON string v; ok is false when v is
// not a string. Invalid UTF-8 and lone surrogates become U+FFFD, as in
// encoding/json.
func StringValue(v []byte) (s string, ok bool) {
	if KindOf(v) != String {
		return "", false
	}
	i := skipSpace(v, 0)
	j := len(v)
	for j > i && isSpace(v[j-1]) {
		j--
	}
	body := v[i+1 : j-1]
	if !hasEscapeOrInvalid(body) {
		return string(body), true
	}
	if err := json.Unmarshal(v[i:j], &s); err != nil {
		return "", false
	}
	return s, true
}

func hasEscapeOrInvalid(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return !utf8.Valid(b)
}

// Text returns a scalar's text: a string's value, a number's digits as sent,
// "true"/"false". ok is false for null, objects and arrays.
func Text(v []byte) (string, bool) {
	switch KindOf(v) {
	case String:
		return StringValue(v)
	case Number, Bool:
		return string(trimSpace(v)), true
	}
	return "", false
}

// AppendString appends s as a JSON string. Like encoding/json (without its
// HTML escaping), it escapes quotes, backslashes, control characters and
// U+2028/U+2029, and writes invalid UTF-8 as U+FFFD, so the result is always
// valid JSON.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// IsNumber reports whether s is a JSON number (RFC 8259 grammar: no leading
// "+", no leading zeros, no "Inf", no hex).
func IsNumber(s string) bool {
	end, ok := scanNumber([]byte(s), 0)
	return ok && end == len(s)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// scanValue checks the value starting at b[i] (no leading space) and returns
// the index just after it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, syntaxErr(b, i, "unexpected end of input")
	}
	switch c := b[i]; {
	case c == '{':
		return scanObject(b, i, depth+1, nil)
	case c == '[':
		return scanArray(b, i, depth+1, nil)
	case c == '"':
		return scanString(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		end, ok := scanNumber(b, i)
		if !ok {
			return end, syntaxErr(b, end, "malformed number")
		}
		return end, nil
	default:
		return i, syntaxErr(b, i, "unexpected %q", c)
	}
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, syntaxErr(b, i, "expected %s", lit)
	}
	return i + len(lit), nil
}

// scanObject checks the object at b[i] == '{'; with o != nil it records the
// members of this level.
func scanObject(b []byte, i, depth int, o *Object) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(b, i, "nested deeper than %d levels", MaxDepth)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, syntaxErr(b, i, "expected a string key")
		}
		keyEnd, err := scanString(b, i)
		if err != nil {
			return keyEnd, err
		}
		rawKey := b[i:keyEnd]
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return i, syntaxErr(b, i, "expected ':' after a key")
		}
		i = skipSpace(b, i+1)
		start := i
		if i, err = scanValue(b, i, depth); err != nil {
			return i, err
		}
		if o != nil {
			key, _ := StringValue(rawKey)
			o.Members = append(o.Members, Member{Key: key, Value: b[start:i:i], rawKey: rawKey, origKey: key})
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, syntaxErr(b, i, "unexpected end of input in an object")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(b, i, "expected ',' or '}'")
		}
	}
}

func scanArray(b []byte, i, depth int, items *[][]byte) (int, error) {
	if depth > MaxDepth {
		return i, syntaxErr(b, i, "nested deeper than %d levels", MaxDepth)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		if items != nil && *items == nil {
			*items = [][]byte{}
		}
		return i + 1, nil
	}
	for {
		start := i
		var err error
		if i, err = scanValue(b, i, depth); err != nil {
			return i, err
		}
		if items != nil {
			*items = append(*items, b[start:i:i])
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, syntaxErr(b, i, "unexpected end of input in an array")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, syntaxErr(b, i, "expected ',' or ']'")
		}
	}
}

// scanString checks the string at b[i] == '"'. Raw bytes >= 0x80 are not
// checked for UTF-8 validity, as in encoding/json; readers replace invalid
// sequences with U+FFFD.
func scanString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return i, syntaxErr(b, i, "control character in a string")
		case c == '\\':
			i++
			if i >= len(b) {
				return i, syntaxErr(b, i, "unexpected end of input in a string")
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return i, syntaxErr(b, i, "malformed \\u escape")
				}
				i += 4
			default:
				return i, syntaxErr(b, i, "unknown escape \\%c", b[i])
			}
		}
	}
	return i, syntaxErr(b, i, "unterminated string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber returns the end of the number at b[i] and whether it follows
// the JSON grammar.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}
