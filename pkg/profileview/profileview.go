// Package profileview is what a reader of the profile API sees of a
// person (customer 360): the live profile from the identity graph, its
// current segments, its recorded consent, masked for readers without the
// pii:read scope (pii.Redaction). The API's profile endpoint and privacy
// export both render profiles with it, so the two never disagree.
package profileview

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
)

// Identity is one identifier of a profile.
type Identity struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Profile is the rendered profile. The field names are the profile API's
// public interface (ARCHITECTURE.md).
type Profile struct {
	ProfileID      string                      `json:"profile_id"`
	Identities     []Identity                  `json:"identities"`
	Traits         map[string]json.RawMessage  `json:"traits"`
	Segments       []string                    `json:"segments"`
	Counters       map[string]int64            `json:"counters"`
	FirstSeen      time.Time                   `json:"first_seen"`
	LastSeen       time.Time                   `json:"last_seen"`
	Version        int64                       `json:"version"`
	MergedProfiles []string                    `json:"merged_profiles"`
	Consent        map[string]consent.Decision `json:"consent"`
	// PIIMasked says personal data was masked (the key lacks pii:read).
	PIIMasked bool `json:"pii_masked"`
}

// Render builds the view of p with its current segments and consent;
// red is nil for a reader who may see personal data.
func Render(p identity.Profile, segments []string, cs consent.State, red *pii.Redaction) Profile {
	out := Profile{ProfileID: p.ID, Identities: []Identity{}, Traits: p.Traits, Segments: segments, Counters: p.Counters,
		FirstSeen: p.FirstSeen, LastSeen: p.LastSeen, Version: p.Version, MergedProfiles: p.Merged, Consent: Consent(cs, red), PIIMasked: red != nil}
	for _, id := range p.Identities {
		out.Identities = append(out.Identities, Identity{Type: id.Type, Value: Value(red, id.Type, id.Value)})
	}
	if red != nil {
		out.Traits = red.Traits(p.Traits)
	}
	if out.Traits == nil {
		out.Traits = map[string]json.RawMessage{}
	}
	if out.Counters == nil {
		out.Counters = map[string]int64{}
	}
	if out.Segments == nil {
		out.Segments = []string{}
	}
	if out.MergedProfiles == nil {
		out.MergedProfiles = []string{}
	}
	return out
}

// Value is an identifier's value as the reader sees it.
func Value(red *pii.Redaction, typ, value string) string {
	if red == nil {
		return value
	}
	return red.Identifier(typ, value)
}

// Identifier is "type:value" as the reader sees it.
func Identifier(red *pii.Redaction, typ, value string) string {
	return typ + ":" + Value(red, typ, value)
}

// Consent renders a consent state; the identifier each decision was
// recorded against is masked like the profile's identities.
func Consent(cs consent.State, red *pii.Redaction) map[string]consent.Decision {
	out := make(map[string]consent.Decision, len(cs))
	for c, d := range cs {
		if red != nil {
			if t, v, ok := strings.Cut(d.Identifier, ":"); ok {
				d.Identifier = Identifier(red, t, v)
			}
		}
		out[c] = d
	}
	return out
}
