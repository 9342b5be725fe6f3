package main

// Transitional: the handlers not yet moved onto proto/api/v1 services.

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/firstparty/firstparty/pkg/access"
)

func (a *auth) authorizeHTTP(w http.ResponseWriter, r *http.Request, scope access.Scope) (access.Key, bool) {
	ctx := metadata.NewIncomingContext(r.Context(), metadata.Pairs("authorization", r.Header.Get("Authorization")))
	k, err := a.authorize(ctx, scope)
	if err != nil {
		body, code := errorBody(err)
		writeError(w, code, status.Convert(err).Message())
		_ = body
		return k, false
	}
	return k, true
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
