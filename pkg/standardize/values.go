package standardize

import (
	"errors"
	"fmt"
	"math"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/firstparty/firstparty/pkg/jsonedit"
)

// email trims and lower-cases a valid address; see the package doc.
func email(s *standardizer, v []byte, pointer string) ([]byte, bool) {
	kind := jsonedit.KindOf(v)
	if kind == jsonedit.Null {
		return v, false
	}
	if kind != jsonedit.String {
		s.report(pointer, "email", "an email must be a string, got %s", kindName(kind))
		return v, false
	}
	raw, _ := jsonedit.StringValue(v)
	trimmed := strings.TrimFunc(raw, isTrimmable)
	if trimmed == "" {
		return v, false
	}
	out := trimmed
	if err := checkEmail(trimmed); err != nil {
		s.report(pointer, "email", "not an email address: %v", err)
	} else {
		out = strings.ToLower(trimmed)
	}
	if out == raw {
		return v, false
	}
	return jsonedit.AppendString(nil, out), true
}

// checkEmail explains what is wrong with addr without quoting it: the
// reason is stored with the event, outside the reach of the PII policy.
func checkEmail(addr string) error {
	if !strings.Contains(addr, "@") {
		return errors.New("it has no @")
	}
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return errors.New("RFC 5322 does not accept it")
	}
	if a.Name != "" || a.Address != addr {
		return errors.New("expected a bare address such as ada@example.com, without a name or comments")
	}
	domain := addr[strings.LastIndexByte(addr, '@')+1:]
	if dot := strings.IndexByte(domain, '.'); dot <= 0 || strings.HasSuffix(domain, ".") {
		return errors.New("its domain has no dot")
	}
	return nil
}

// phone writes a valid number in E.164; see the package doc.
func phone(s *standardizer, v []byte, pointer string) (out []byte, changed bool) {
	kind := jsonedit.KindOf(v)
	if kind == jsonedit.Null {
		return v, false
	}
	if kind != jsonedit.String && kind != jsonedit.Number {
		s.report(pointer, "phone", "a phone number must be a string, got %s", kindName(kind))
		return v, false
	}
	raw, _ := jsonedit.Text(v)
	if strings.TrimFunc(raw, isTrimmable) == "" {
		return v, false
	}
	e164, err := s.parsePhone(raw)
	if err != nil {
		s.report(pointer, "phone", "not a valid phone number: %v", err)
		return v, false
	}
	if kind == jsonedit.String && e164 == raw {
		return v, false
	}
	return jsonedit.AppendString(nil, e164), true
}

func (s *standardizer) parsePhone(raw string) (e164 string, err error) {
	// The library is a port of a large parser; hostile input has crashed
	// such ports before. A panic here would crash-loop the validator on one
	// message, so it becomes this event's violation instead.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the phone number parser failed: %v", r)
		}
	}()
	region := s.region
	if region == "" {
		region = "ZZ" // unknown region: only +country-code numbers parse
	}
	if e164, ok := ownCountryCodeWithoutPlus(raw, s.region); ok {
		return e164, nil
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil {
		if errors.Is(err, phonenumbers.ErrInvalidCountryCode) && s.region == "" {
			return "", fmt.Errorf("it has no +country code and the source has no default region")
		}
		return "", err
	}
	if !phonenumbers.IsValidNumber(num) {
		r := phonenumbers.GetRegionCodeForNumber(num)
		if r == "" || r == "ZZ" {
			return "", fmt.Errorf("no country has numbers like it")
		}
		return "", fmt.Errorf("not a valid number in %s", r)
	}
	return formatE164(num), nil
}

// ownCountryCodeWithoutPlus reads "4915112345678" in region DE as
// +49 151 12345678. libphonenumber reads it as a national number, and since
// German national numbers vary in length it finds +49 4915112345678 valid;
// but numbers stored without their "+" (CRMs, JSON numbers) are far more
// common than national numbers written without their trunk "0". Only numbers
// that start with the region's own country code and are valid in that region
// once read with a "+" take this path.
func ownCountryCodeWithoutPlus(raw, region string) (string, bool) {
	if region == "" {
		return "", false
	}
	digits := strings.TrimFunc(raw, isTrimmable)
	if digits == "" || digits[0] < '1' || digits[0] > '9' {
		return "", false
	}
	cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
	if cc == "0" || !strings.HasPrefix(digits, cc) {
		return "", false
	}
	num, err := phonenumbers.Parse("+"+digits, region)
	if err != nil || !phonenumbers.IsValidNumberForRegion(num, region) {
		return "", false
	}
	return formatE164(num), true
}

// formatE164 writes num in E.164, with its extension in RFC 3966's syntax
// (E.164 has none), which phonenumbers.Parse reads back.
func formatE164(num *phonenumbers.PhoneNumber) string {
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	if ext := num.GetExtension(); ext != "" {
		e164 += ";ext=" + ext
	}
	return e164
}

// age turns a numeric string into a number.
func age(s *standardizer, v []byte, pointer string) ([]byte, bool) {
	switch kind := jsonedit.KindOf(v); kind {
	case jsonedit.Null, jsonedit.Number:
		return v, false
	case jsonedit.String:
		raw, _ := jsonedit.StringValue(v)
		t := strings.TrimFunc(raw, isTrimmable)
		if t == "" {
			return v, false
		}
		if jsonedit.IsNumber(t) {
			return []byte(t), true
		}
		s.report(pointer, "number", "age is a string that does not hold a number")
	default:
		s.report(pointer, "number", "age must be a number, got %s", kindName(kind))
	}
	return v, false
}

// isoMillis is the one form createdAt and birthday are written in.
const isoMillis = "2006-01-02T15:04:05.000Z"

// timestamp writes an ISO-8601 string or a Unix time as an ISO-8601 UTC
// string with milliseconds.
func timestamp(s *standardizer, v []byte, pointer string) ([]byte, bool) {
	var t time.Time
	switch kind := jsonedit.KindOf(v); kind {
	case jsonedit.Null:
		return v, false
	case jsonedit.String:
		raw, _ := jsonedit.StringValue(v)
		trimmed := strings.TrimFunc(raw, isTrimmable)
		if trimmed == "" {
			return v, false
		}
		var ok bool
		if t, ok = parseISO(trimmed); !ok {
			s.report(pointer, "timestamp", "not an ISO-8601 date or time (e.g. 2024-05-01T10:00:00.000Z)")
			return v, false
		}
		if out := t.Format(isoMillis); out != raw {
			return jsonedit.AppendString(nil, out), true
		}
		return v, false
	case jsonedit.Number:
		text, _ := jsonedit.Text(v)
		ms, err := unixMillis(text)
		if err != nil {
			s.report(pointer, "timestamp", "not a Unix time in seconds or milliseconds: %v", err)
			return v, false
		}
		t = time.UnixMilli(ms).UTC()
		return jsonedit.AppendString(nil, t.Format(isoMillis)), true
	default:
		s.report(pointer, "timestamp", "must be an ISO-8601 string or a Unix time, got %s", kindName(kind))
		return v, false
	}
}

var isoLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999", // no zone: UTC, as Segment assumes
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// parseISO accepts the ISO-8601 forms SDKs and CRMs send. Years before 1970
// are fine here (birthdays), unlike for event times.
func parseISO(s string) (time.Time, bool) {
	if len(s) < 10 || len(s) > 40 || s[4] != '-' {
		return time.Time{}, false
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Millisecond), true
		}
	}
	return time.Time{}, false
}

// Bounds of a four-digit year, in Unix milliseconds.
const (
	minMillis = -62135596800000 // 0001-01-01T00:00:00Z
	maxMillis = 253402300799999 // 9999-12-31T23:59:59.999Z
)

// unixMillis reads a Unix time in seconds (|n| < 1e11) or milliseconds from
// a JSON number's text. Plain decimals are read exactly (1714557600.123 is
// .123, not .122999); only exponent forms go through float64.
func unixMillis(text string) (int64, error) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !isRangeErr(err) {
		return 0, errors.New("not a number")
	}
	seconds := math.Abs(f) < 1e11
	ms := f
	if seconds {
		ms = f * 1000
	}
	if math.IsInf(ms, 0) || ms < minMillis || ms > maxMillis {
		return 0, fmt.Errorf("outside the years 1 to 9999")
	}
	if strings.ContainsAny(text, "eE") {
		return int64(math.Floor(ms)), nil
	}
	neg := strings.HasPrefix(text, "-")
	intPart, frac, _ := strings.Cut(strings.TrimPrefix(text, "-"), ".")
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	if seconds {
		frac = (frac + "000")[:3]
		f, _ := strconv.ParseInt(frac, 10, 64)
		n = n*1000 + f
	}
	if neg {
		n = -n
	}
	return n, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func kindName(k jsonedit.Kind) string {
	switch k {
	case jsonedit.Null:
		return "null"
	case jsonedit.Bool:
		return "a boolean"
	case jsonedit.Number:
		return "a number"
	case jsonedit.String:
		return "a string"
	case jsonedit.ObjectKind:
		return "an object"
	case jsonedit.Array:
		return "an array"
	}
	return "invalid JSON"
}
