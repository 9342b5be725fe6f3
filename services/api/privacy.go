package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/profileview"
)

// privacyAPI serves the privacy requests (GDPR, PIPL), each audited:
//
//	POST /v1/privacy/erase    privacy:erase  {"identifier": "<type>:<value>", "reason": "…"}
//	POST /v1/privacy/export   privacy:export {"identifier": "<type>:<value>"}
//	PUT  /v1/privacy/consent  consent:write  {"identifier", "categories": {"analytics": true, …}, "source", "at"?}
//	GET  /v1/privacy/consent  consent:read   ?identifier=<type>:<value>
//	GET  /v1/privacy/audit    audit:read     the workspace's latest requests
//
// Erase answers when the person is gone from Redis and ClickHouse, with the
// report that was also written to the audit log. Export streams one JSON
// document (see pkg/privacy export.go; check its "complete").
type privacyAPI struct {
	auth *auth
	svc  *privacy.Service
	now  func() time.Time
}

func (p *privacyAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/privacy/erase", p.erase)
	mux.HandleFunc("POST /v1/privacy/export", p.export)
	mux.HandleFunc("PUT /v1/privacy/consent", p.recordConsent)
	mux.HandleFunc("POST /v1/privacy/consent", p.recordConsent)
	mux.HandleFunc("GET /v1/privacy/consent", p.readConsent)
	mux.HandleFunc("GET /v1/privacy/audit", p.audit)
}

// decode reads a JSON body of at most limit bytes into v, refusing
// unknown fields so a misspelt one is an error rather than ignored.
func decode(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON object")
	}
	return nil
}

// logError logs what the client is not told: errors can quote the
// identifiers of the request.
func (p *privacyAPI) logError(msg string, err error) {
	if p.svc.Log != nil {
		p.svc.Log.Warn(msg, "err", err)
	}
}

func (p *privacyAPI) erase(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorizeHTTP(w, r, access.PrivacyErase)
	if !ok {
		return
	}
	var body struct {
		Identifier string `json:"identifier"`
		Reason     string `json:"reason"`
	}
	err := decode(w, r, &body, 64<<10)
	id, okID := parseIdentifier(body.Identifier)
	if err != nil || !okID || body.Reason == "" {
		writeError(w, http.StatusBadRequest, `send {"identifier": "<type>:<value>", "reason": "the request's reference"}`)
		return
	}
	rep, err := p.svc.Erase(r.Context(), key.Workspace, id, body.Reason)
	if err != nil {
		// rep.Status names the step, never the error (it may quote the
		// identifiers); the service logged the error.
		writeError(w, http.StatusServiceUnavailable, "erase not finished: "+rep.Status+" (the request "+rep.RequestID+" resumes where it stopped); it is safe to send again")
		return
	}
	writeJSON(w, privacy.MaskReport(rep, p.auth.redaction(key)))
}

// countingWriter tells whether the answer has begun.
type countingWriter struct {
	w http.ResponseWriter
	n int
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.n == 0 {
		c.w.Header().Set("Content-Type", "application/json")
	}
	c.n += len(b)
	return c.w.Write(b)
}

func (p *privacyAPI) export(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorizeHTTP(w, r, access.PrivacyExport)
	if !ok {
		return
	}
	var body struct {
		Identifier string `json:"identifier"`
	}
	err := decode(w, r, &body, 64<<10)
	id, okID := parseIdentifier(body.Identifier)
	if err != nil || !okID {
		writeError(w, http.StatusBadRequest, `send {"identifier": "<type>:<value>"}, e.g. {"identifier": "email:a@b.c"}`)
		return
	}
	cw := &countingWriter{w: w}
	if _, err := p.svc.Export(r.Context(), key.Workspace, id, cw, p.auth.redaction(key)); err != nil && cw.n == 0 {
		p.logError("export not started", err)
		writeError(w, http.StatusServiceUnavailable, "export not started (Redis or ClickHouse unavailable); retry")
	}
	// Once the document has begun, a failure is told inside it
	// ("complete": false, "error") and in the audit log.
}

func (p *privacyAPI) recordConsent(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorizeHTTP(w, r, access.ConsentWrite)
	if !ok {
		return
	}
	var body struct {
		Identifier string          `json:"identifier"`
		Categories map[string]bool `json:"categories"`
		Source     string          `json:"source"`
		At         *time.Time      `json:"at"`
	}
	const usage = `send {"identifier": "<type>:<value>", "categories": {"analytics": true, "marketing": false}, "source": "where it came from", "at": "RFC 3339 time of the decision (optional, default now)"}`
	if err := decode(w, r, &body, 64<<10); err != nil {
		writeError(w, http.StatusBadRequest, "the body is not valid ("+err.Error()+"); "+usage)
		return
	}
	id, okID := parseIdentifier(body.Identifier)
	if !okID {
		writeError(w, http.StatusBadRequest, "identifier must be <type>:<value>; "+usage)
		return
	}
	u := consent.Update{Categories: body.Categories, Source: body.Source, At: p.now()}
	if body.At != nil {
		if body.At.After(p.now().Add(5 * time.Minute)) {
			writeError(w, http.StatusBadRequest, "at is in the future; send the time the person decided")
			return
		}
		u.At = *body.At
	}
	u, err := u.Normalize()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ans, err := p.svc.RecordConsent(r.Context(), key.Workspace, id, u)
	if errors.Is(err, privacy.ErrSuppressed) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		p.logError("consent not recorded", err)
		writeError(w, http.StatusServiceUnavailable, "consent not recorded (Redis unavailable); it is safe to send again")
		return
	}
	writeJSON(w, maskConsent(ans, p.auth.redaction(key)))
}

func (p *privacyAPI) readConsent(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorizeHTTP(w, r, access.ConsentRead)
	if !ok {
		return
	}
	id, okID := parseIdentifier(r.URL.Query().Get("identifier"))
	if !okID {
		writeError(w, http.StatusBadRequest, "send ?identifier=<type>:<value>, e.g. ?identifier=email:a@b.c")
		return
	}
	ans, err := p.svc.ReadConsent(r.Context(), key.Workspace, id)
	if err != nil {
		p.logError("consent unavailable", err)
		writeError(w, http.StatusServiceUnavailable, "consent unavailable (Redis unavailable); retry")
		return
	}
	writeJSON(w, maskConsent(ans, p.auth.redaction(key)))
}

func maskConsent(a privacy.ConsentAnswer, red *pii.Redaction) any {
	type answer struct {
		privacy.ConsentAnswer
		Consent    map[string]consent.Decision `json:"consent"`
		Categories map[string]bool             `json:"categories"`
	}
	out := answer{ConsentAnswer: a, Consent: profileview.Consent(a.Consent, red), Categories: a.Consent.Granted()}
	if t, v, ok := strings.Cut(a.Identifier, ":"); ok {
		out.Identifier = profileview.Identifier(red, t, v)
	}
	return out
}

func (p *privacyAPI) audit(w http.ResponseWriter, r *http.Request) {
	key, ok := p.auth.authorizeHTTP(w, r, access.AuditRead)
	if !ok {
		return
	}
	reps, err := p.svc.Audit(r.Context(), key.Workspace, 100)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "audit log unavailable; retry")
		return
	}
	red := p.auth.redaction(key)
	for i := range reps {
		reps[i] = privacy.MaskReport(reps[i], red)
	}
	writeJSON(w, map[string]any{"requests": reps})
}
