package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/stage"
)

// profileAPI serves GET /v1/profiles/{type}:{value}: a profile by any of
// its identifiers (user_id:42, email:a@b.c, anonymous_id:…).
type profileAPI struct {
	graph    *identity.Graph
	segments *segstate.Store
	keys     map[string]string
	// changes announces splits on cdp.profiles.changes.
	changes      stage.Sink
	changesTopic string
	now          func() time.Time
}

func newProfileAPI(g *identity.Graph, s *segstate.Store, keys map[string]string, changes stage.Sink, topic string) *profileAPI {
	return &profileAPI{graph: g, segments: s, keys: keys, changes: changes, changesTopic: topic, now: time.Now}
}

func (p *profileAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/profiles/{id}", p.get)
	mux.HandleFunc("POST /v1/profiles/{id}/unlink", p.unlink)
}

// unlink serves POST /v1/profiles/{type}:{value}/unlink with
// {"identifier": "<type>:<value>", "reason": "…"}: it cuts a wrong link
// between the two identifiers (pkg/identity Unlink), announces the split on
// cdp.profiles.changes, and answers what became of the profile.
func (p *profileAPI) unlink(w http.ResponseWriter, r *http.Request) {
	ws, ok := p.workspace(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>")
		return
	}
	a, ok := parseIdentifier(r.PathValue("id"))
	var body struct {
		Identifier string `json:"identifier"`
		Reason     string `json:"reason"`
	}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body)
	b, okB := parseIdentifier(body.Identifier)
	if !ok || err != nil || !okB || body.Reason == "" {
		writeError(w, http.StatusBadRequest, `send {"identifier": "<type>:<value>", "reason": "why the link is wrong"} to unlink it from the profile's identifier in the path`)
		return
	}
	split, err := p.graph.Unlink(r.Context(), ws, a, b, body.Reason, p.now())
	if errors.Is(err, identity.ErrSameIdentifier) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "profile store unavailable; retry")
		return
	}
	if split.Status == "not_linked" {
		writeError(w, http.StatusConflict, a.String()+" and "+b.String()+" are not on one profile")
		return
	}
	cause := "unlink/" + a.String() + "|" + b.String() + "/" + split.ProfileID
	var msgs []kafka.Message
	for _, c := range split.Changes(ws, cause, p.now()) {
		v, _ := proto.Marshal(c)
		msgs = append(msgs, kafka.Message{Topic: p.changesTopic, Key: []byte(c.ProfileId), Value: v})
	}
	if len(msgs) > 0 && p.changes != nil {
		if err := p.changes.Produce(r.Context(), msgs...); err != nil {
			// The split is done in Redis; announcing it failed. Retrying the
			// call answers not_linked, so say it plainly.
			writeError(w, http.StatusServiceUnavailable, "the profile was split but the change could not be announced on Kafka: "+err.Error())
			return
		}
	}
	type piece struct {
		ProfileID  string         `json:"profile_id"`
		Identities []identityJSON `json:"identities"`
	}
	out := struct {
		Status    string  `json:"status"`
		ProfileID string  `json:"profile_id"`
		Pieces    []piece `json:"pieces"`
	}{Status: split.Status, ProfileID: split.ProfileID, Pieces: []piece{}}
	for _, pc := range split.Pieces {
		x := piece{ProfileID: pc.ProfileID}
		for _, id := range pc.Identifiers {
			x.Identities = append(x.Identities, identityJSON{id.Type, id.Value})
		}
		out.Pieces = append(out.Pieces, x)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func parseIdentifier(s string) (identity.Identifier, bool) {
	t, v, ok := strings.Cut(s, ":")
	return identity.Identifier{Type: t, Value: v}, ok && t != "" && v != ""
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
	id, ok := parseIdentifier(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusBadRequest, "the profile id must be <type>:<value>, e.g. user_id:42 or email:a@b.c")
		return
	}
	prof, err := p.graph.Lookup(r.Context(), ws, id)
	if errors.Is(err, identity.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no profile holds "+id.String())
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
