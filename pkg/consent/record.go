package consent

import (
	"fmt"
	"regexp"
	"sort"
	"time"
)

// A person's recorded consent (the API's PUT /v1/privacy/consent) is kept
// per identifier and per category, each category versioned by the time the
// person gave or withdrew it: the newest decision wins, whatever order the
// records arrive in. Reading a person's consent merges the records of every
// identifier on their profile the same way (Merge), so consent recorded
// against an email still holds after the email merged into a profile with
// a user id, and survives a split on the side that keeps the email.

// MaxCategories bounds the categories of one update.
const MaxCategories = 50

var categoryPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Update is one consent record: categories granted (true) or refused
// (false) at At, as reported by Source (the CMP, form or ticket it came
// from).
type Update struct {
	Categories map[string]bool
	Source     string
	At         time.Time
}

// Normalize folds category names as the validator's policy compares them
// (lower case, trimmed) and checks the update; errors say what to fix.
func (u Update) Normalize() (Update, error) {
	if len(u.Categories) == 0 {
		return u, fmt.Errorf("categories is empty; send e.g. {\"analytics\": true, \"marketing\": false}")
	}
	if len(u.Categories) > MaxCategories {
		return u, fmt.Errorf("%d categories; at most %d per request", len(u.Categories), MaxCategories)
	}
	if u.Source == "" || len(u.Source) > 256 {
		return u, fmt.Errorf("source must name where the consent came from (1-256 characters), e.g. \"cmp:onetrust\"")
	}
	if u.At.IsZero() {
		return u, fmt.Errorf("the time of the decision is missing")
	}
	out := Update{Categories: make(map[string]bool, len(u.Categories)), Source: u.Source, At: u.At.UTC()}
	names := make([]string, 0, len(u.Categories))
	for c := range u.Categories {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, c := range names {
		key := fold(c)
		if !categoryPattern.MatchString(key) {
			return u, fmt.Errorf("category %q: use 1-64 lower-case letters, digits, '_', '.' or '-'", c)
		}
		if _, dup := out.Categories[key]; dup {
			return u, fmt.Errorf("category %q is sent twice (names are compared case-insensitively)", c)
		}
		out.Categories[key] = u.Categories[c]
	}
	return out, nil
}

// Decision is the current state of one category.
type Decision struct {
	Granted bool      `json:"granted"`
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
	// Identifier is the identifier the decision was recorded against.
	Identifier string `json:"identifier"`
}

// newer reports whether a beats b: the later decision, and of two at the
// same instant the one recorded against the smaller identifier (so the
// answer does not depend on read order).
func (a Decision) newer(b Decision) bool {
	if !a.At.Equal(b.At) {
		return a.At.After(b.At)
	}
	return a.Identifier < b.Identifier
}

// State is a person's consent: category → the newest decision.
type State map[string]Decision

// Merge combines the decisions recorded against several identifiers of one
// person: per category, the newest wins.
func Merge(states ...State) State {
	out := State{}
	for _, s := range states {
		for c, d := range s {
			if cur, ok := out[c]; !ok || d.newer(cur) {
				out[c] = d
			}
		}
	}
	return out
}

// Granted is the state as category → granted.
func (s State) Granted() map[string]bool {
	out := make(map[string]bool, len(s))
	for c, d := range s {
		out[c] = d.Granted
	}
	return out
}
