package pii

import "regexp"

// Email- and phone-shaped runs in free text: an email's local part stops
// at the separators Firstparty writes around identifiers ("email:ann@x.io|
// email:bob@x.io/p_1", "identifier email:ann@x.io: limit"); a phone is an
// E.164-like "+" and 7-15 digits (standardize stores that form, with
// optional spaces, dots, dashes or brackets as sent) or a bare run of 10
// to 15 digits.
var (
	emailShaped = regexp.MustCompile(`[^\s"'<>()\[\],;:|/\\=]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+`)
	phoneShaped = regexp.MustCompile(`\+[0-9][0-9 ().-]{5,20}[0-9]|\b[0-9]{10,15}\b`)
)

// MaskText masks every email- and phone-shaped value in s, whatever field
// it sits in — an audit entry's reason or status, an error message
// quoting a query, a change's detail, a user_id that is an email — with
// MaskString's rules ("ann@x.io" → "a***@x.io", "+4915112345678" → "+***8").
// Values already masked stay as they are.
func MaskText(s string) string {
	s = emailShaped.ReplaceAllStringFunc(s, MaskString)
	return phoneShaped.ReplaceAllStringFunc(s, MaskString)
}
