package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/history"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/profileview"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/stage"
)

// profileAPI serves the customer 360:
//
//	GET  /v1/profiles/{type}:{value}          profiles:read  the profile by any identifier
//	GET  /v1/profiles/{type}:{value}/events   profiles:read  its events, newest first (?limit=, 1..1000, default 50)
//	GET  /v1/profiles?trait=&value=&cursor=   profiles:read  search by trait (a bounded scan, see identity.SearchTrait)
//	POST /v1/profiles/{type}:{value}/unlink   profiles:write undo a wrong merge
//
// Personal data is masked for keys without pii:read (pii.Redaction).
type profileAPI struct {
	graph    *identity.Graph
	segments *segstate.Store
	consent  *consent.Store
	history  *history.Reader // nil: no ClickHouse, the events endpoint answers 503
	auth     *auth
	// changes announces splits on cdp.profiles.changes.
	changes      stage.Sink
	changesTopic string
	now          func() time.Time
}

func (p *profileAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/profiles/{id}", p.get)
	mux.HandleFunc("GET /v1/profiles/{id}/events", p.events)
	mux.HandleFunc("GET /v1/profiles", p.search)
	mux.HandleFunc("POST /v1/profiles/{id}/unlink", p.unlink)
}

// unlink serves POST /v1/profiles/{type}:{value}/unlink with
// {"identifier": "<type>:<value>", "reason": "…"}: it cuts a wrong link
// between the two identifiers (pkg/identity Unlink), announces the split on
// cdp.profiles.changes, and answers what became of the profile.
func (p *profileAPI) unlink(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorize(w, r, access.ProfilesWrite)
	if !ok {
		return
	}
	ws, red := key.Workspace, p.auth.redaction(key)
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
		writeError(w, http.StatusConflict, profileview.Identifier(red, a.Type, a.Value)+" and "+profileview.Identifier(red, b.Type, b.Value)+" are not on one profile")
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
			x.Identities = append(x.Identities, identityJSON{Type: id.Type, Value: profileview.Value(red, id.Type, id.Value)})
		}
		out.Pieces = append(out.Pieces, x)
	}
	writeJSON(w, out)
}

func parseIdentifier(s string) (identity.Identifier, bool) {
	t, v, ok := strings.Cut(s, ":")
	return identity.Identifier{Type: t, Value: v}, ok && t != "" && v != ""
}

type identityJSON = profileview.Identity

// get serves a profile: identities, traits, counters, lineage, current
// segments and recorded consent.
func (p *profileAPI) get(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorize(w, r, access.ProfilesRead)
	if !ok {
		return
	}
	prof, ok := p.lookup(w, r, key)
	if !ok {
		return
	}
	view, err := p.render(r.Context(), key, prof)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error()+"; retry")
		return
	}
	writeJSON(w, view)
}

// lookup resolves the path's identifier; on failure it has answered.
func (p *profileAPI) lookup(w http.ResponseWriter, r *http.Request, key access.Key) (identity.Profile, bool) {
	id, ok := parseIdentifier(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusBadRequest, "the profile id must be <type>:<value>, e.g. user_id:42 or email:a@b.c")
		return identity.Profile{}, false
	}
	prof, err := p.graph.Lookup(r.Context(), key.Workspace, id)
	if errors.Is(err, identity.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no profile holds "+profileview.Identifier(p.auth.redaction(key), id.Type, id.Value))
		return identity.Profile{}, false
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "profile store unavailable; retry")
		return identity.Profile{}, false
	}
	return prof, true
}

func (p *profileAPI) render(ctx context.Context, key access.Key, prof identity.Profile) (profileview.Profile, error) {
	ms, err := p.segments.Memberships(ctx, key.Workspace, prof.ID)
	if err != nil {
		return profileview.Profile{}, errors.New("segment store unavailable")
	}
	segs := []string{}
	for _, m := range ms {
		segs = append(segs, m.SegmentID)
	}
	var cs consent.State
	if p.consent != nil {
		ids := make([]consent.Identifier, len(prof.Identities))
		for i, id := range prof.Identities {
			ids[i] = consent.Identifier{Type: id.Type, Value: id.Value}
		}
		if cs, err = p.consent.Read(ctx, key.Workspace, ids); err != nil {
			return profileview.Profile{}, errors.New("consent store unavailable")
		}
	}
	return profileview.Render(prof, segs, cs, p.auth.redaction(key)), nil
}

// events serves a profile's most recent events from ClickHouse, newest
// first: the events resolved to the profile or to any profile merged into
// it (the lineage Redis keeps).
func (p *profileAPI) events(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorize(w, r, access.ProfilesRead)
	if !ok {
		return
	}
	limit, err := intParam(r, "limit", 50, 1, 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	prof, ok := p.lookup(w, r, key)
	if !ok {
		return
	}
	if p.history == nil {
		writeError(w, http.StatusServiceUnavailable, "no event history configured (ClickHouse)")
		return
	}
	evs, err := p.history.Recent(r.Context(), key.Workspace, append([]string{prof.ID}, prof.Merged...), limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "event history unavailable; retry")
		return
	}
	red := p.auth.redaction(key)
	out := make([]history.Event, 0, len(evs))
	for _, e := range evs {
		out = append(out, privacy.MaskEvent(e, red))
	}
	writeJSON(w, map[string]any{"profile_id": prof.ID, "events": out, "pii_masked": red != nil})
}

// search serves GET /v1/profiles?trait=plan&value=pro[&cursor=…&count=…]:
// one bounded page of a scan over the workspace's profiles. An empty page
// with a non-empty cursor is normal; the search is complete when the
// answer's cursor is "".
func (p *profileAPI) search(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorize(w, r, access.ProfilesRead)
	if !ok {
		return
	}
	q := r.URL.Query()
	trait, value := q.Get("trait"), q.Get("value")
	if trait == "" || !q.Has("value") {
		writeError(w, http.StatusBadRequest, "search with ?trait=<name>&value=<value>, e.g. ?trait=plan&value=pro; page on with the answer's cursor")
		return
	}
	red := p.auth.redaction(key)
	if red != nil {
		if masked := red.Traits(map[string]json.RawMessage{trait: json.RawMessage(`"xx"`)}); string(masked[trait]) != `"xx"` {
			writeError(w, http.StatusForbidden, "searching by the personal trait "+trait+" needs the scope "+string(access.PIIRead))
			return
		}
	}
	cursor := uint64(0)
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseUint(c, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "cursor must be the cursor of the previous answer")
			return
		}
		cursor = n
	}
	count, err := intParam(r, "count", 500, 1, identity.MaxSearchCount)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	pids, next, err := p.graph.SearchTrait(r.Context(), key.Workspace, trait, value, cursor, int64(count))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "profile store unavailable; retry")
		return
	}
	profs, err := p.graph.Profiles(r.Context(), key.Workspace, pids)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "profile store unavailable; retry")
		return
	}
	out := []profileview.Profile{}
	for _, pid := range pids {
		prof, ok := profs[pid]
		if !ok || prof.ID != pid {
			continue // erased or merged away since the scan
		}
		view, err := p.render(r.Context(), key, prof)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error()+"; retry")
			return
		}
		out = append(out, view)
	}
	nextCursor := ""
	if next != 0 {
		nextCursor = strconv.FormatUint(next, 10)
	}
	writeJSON(w, map[string]any{"profiles": out, "cursor": nextCursor})
}

func intParam(r *http.Request, name string, def, min, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s must be a whole number from %d to %d", name, min, max)
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]string{"error": msg})
}
