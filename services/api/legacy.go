package main

// Transitional: the handlers not yet moved onto proto/api/v1 services.

import (
	"encoding/json"
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
