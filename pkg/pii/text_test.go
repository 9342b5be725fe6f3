package pii

import "testing"

func TestMaskText(t *testing.T) {
	for in, want := range map[string]string{
		"ann@x.io":                                        "a***@x.io",
		"user_id:Ann.Lee@Example.com":                     "user_id:A***@Example.com",
		"unlink/email:ann@x.io|email:bob@x.io/p_1":        "unlink/email:a***@x.io|email:b***@x.io/p_1",
		"identifier phone:+4915112345678: limit (…)":      "identifier phone:+***8: limit (…)",
		"code: 62, e.displayText() = near '\"ann@x.io\"'": "code: 62, e.displayText() = near '\"a***@x.io\"'",
		"call +49 151 1234 5678 or 015112345678":          "call +***8 or 0***8",
		"ticket 4711 at 2026-11-20T10:00:00Z":             "ticket 4711 at 2026-11-20T10:00:00Z",
		"already a***@x.io":                               "already a***@x.io",
		"p_0123abcd erased on request":                    "p_0123abcd erased on request",
	} {
		if got := MaskText(in); got != want {
			t.Errorf("MaskText(%q) = %q, want %q", in, got, want)
		}
	}
}
