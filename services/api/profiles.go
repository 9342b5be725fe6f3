package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/segstate"
)

// profileAPI serves GET /v1/profiles/{type}:{value}: a profile by any of
// its identifiers (user_id:42, email:a@b.c, anonymous_id:…).
type profileAPI struct {
	graph    *identity.Graph
	segments *segstate.Store
	keys     map[string]string
}

func newProfileAPI(g *identity.Graph, s *segstate.Store, keys map[string]string) *profileAPI {
	return &profileAPI{graph: g, segments: s, keys: keys}
}

func (p *profileAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/profiles/{id}", p.get)
}

// workspace authenticates the admin key; comparison is constant-time.
func (p *profileAPI) workspace(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	for k, ws := range p.keys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(token)) == 1 {
			return ws, true
		}
	}
	return "", false
}

type identityJSON struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type profileJSON struct {
	ProfileID      string                     `json:"profile_id"`
	Identities     []identityJSON             `json:"identities"`
	Traits         map[string]json.RawMessage `json:"traits"`
	Segments       []string                   `json:"segments"`
	Counters       map[string]int64           `json:"counters"`
	FirstSeen      time.Time                  `json:"first_seen"`
	LastSeen       time.Time                  `json:"last_seen"`
	Version        int64                      `json:"version"`
	MergedProfiles []string                   `json:"merged_profiles"`
}

func (p *profileAPI) get(w http.ResponseWriter, r *http.Request) {
	ws, ok := p.workspace(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>")
		return
	}
	typ, value, ok := strings.Cut(r.PathValue("id"), ":")
	if !ok || typ == "" || value == "" {
		writeError(w, http.StatusBadRequest, "the profile id must be <type>:<value>, e.g. user_id:42 or email:a@b.c")
		return
	}
	prof, err := p.graph.Lookup(r.Context(), ws, identity.Identifier{Type: typ, Value: value})
	if errors.Is(err, identity.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no profile holds "+typ+":"+value)
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "profile store unavailable; retry")
		return
	}
	out := profileJSON{ProfileID: prof.ID, Traits: prof.Traits, Segments: []string{}, Counters: prof.Counters,
		FirstSeen: prof.FirstSeen, LastSeen: prof.LastSeen, Version: prof.Version, MergedProfiles: prof.Merged}
	ms, err := p.segments.Memberships(r.Context(), ws, prof.ID)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "segment store unavailable; retry")
		return
	}
	for _, m := range ms {
		out.Segments = append(out.Segments, m.SegmentID)
	}
	for _, id := range prof.Identities {
		out.Identities = append(out.Identities, identityJSON{id.Type, id.Value})
	}
	if out.MergedProfiles == nil {
		out.MergedProfiles = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": msg})
}
