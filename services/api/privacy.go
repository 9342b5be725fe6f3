package main

import (
	"encoding/json"
	"net/http"

	"github.com/firstparty/firstparty/pkg/privacy"
)

// privacyAPI serves the privacy requests:
//
//	POST /v1/privacy/erase   {"identifier": "<type>:<value>", "reason": "…"}
//	GET  /v1/privacy/audit   the workspace's latest requests
//
// Erase answers when the person is gone from Redis and ClickHouse, with the
// report that was also written to the audit log.
type privacyAPI struct {
	profiles *profileAPI // for the admin keys
	svc      *privacy.Service
}

func (p *privacyAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/privacy/erase", p.erase)
	mux.HandleFunc("GET /v1/privacy/audit", p.audit)
}

func (p *privacyAPI) erase(w http.ResponseWriter, r *http.Request) {
	ws, ok := p.profiles.workspace(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>")
		return
	}
	var body struct {
		Identifier string `json:"identifier"`
		Reason     string `json:"reason"`
	}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body)
	id, okID := parseIdentifier(body.Identifier)
	if err != nil || !okID || body.Reason == "" {
		writeError(w, http.StatusBadRequest, `send {"identifier": "<type>:<value>", "reason": "the request's reference"}`)
		return
	}
	rep, err := p.svc.Erase(r.Context(), ws, id, body.Reason)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "erase not finished ("+err.Error()+"); it is safe to send again")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}

func (p *privacyAPI) audit(w http.ResponseWriter, r *http.Request) {
	ws, ok := p.profiles.workspace(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>")
		return
	}
	reps, err := p.svc.Audit(r.Context(), ws, 100)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "audit log unavailable; retry")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"requests": reps})
}
