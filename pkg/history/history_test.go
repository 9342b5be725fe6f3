package history

import "testing"

func TestWhere(t *testing.T) {
	p := Person{Workspace: "shop", ProfileIDs: []string{"p1", "p0"},
		Identifiers: [][2]string{{"user_id", "42"}, {"anonymous_id", "d'1"}, {"email", "ann@x.io"}, {"phone", "+4915112345678"}}}
	for table, want := range map[string]string{
		"events":              `workspace_id = 'shop' AND (profile_id IN ('p1','p0') OR user_id IN ('42') OR anonymous_id IN ('d\'1'))`,
		"identities":          `workspace_id = 'shop' AND (profile_id IN ('p1','p0') OR (identifier_type = '$profile_id' AND identifier_value IN ('p1','p0')))`,
		"profile_changes":     `workspace_id = 'shop' AND (profile_id IN ('p1','p0'))`,
		"segment_memberships": `workspace_id = 'shop' AND (profile_id IN ('p1','p0'))`,
		"rejected_events":     `workspace_id = 'shop' AND (user_id IN ('42') OR anonymous_id IN ('d\'1') OR positionCaseInsensitiveUTF8(raw, '"ann@x.io"') > 0 OR positionCaseInsensitiveUTF8(raw, '"+4915112345678"') > 0 OR positionCaseInsensitiveUTF8(raw, '"004915112345678"') > 0)`,
	} {
		if got := Where(table, p); got != want {
			t.Errorf("%s:\n got %s\nwant %s", table, got, want)
		}
	}
	// An identifier type the person lacks matches nothing: not every event
	// without a user id.
	if got := Where("events", Person{Workspace: "w", Identifiers: [][2]string{{"anonymous_id", "d"}}}); got != `workspace_id = 'w' AND (anonymous_id IN ('d'))` {
		t.Errorf("anonymous person: %s", got)
	}
	for _, table := range Tables {
		if got := Where(table, Person{Workspace: "w"}); got != `workspace_id = 'w' AND 0` {
			t.Errorf("nobody, %s: %s", table, got)
		}
	}
	if got := Quote(`a\'b`); got != `'a\\\'b'` {
		t.Errorf("Quote = %s", got)
	}
}
