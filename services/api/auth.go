package main

import (
	"net/http"
	"strings"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/pii"
)

// auth authenticates admin keys (pkg/access) and decides what a key sees.
//
// Every endpoint names its scope. Answers: 401 for a missing or unknown key
// (a collector write key is unknown here: it can only write); 403 naming
// the missing scope. A key acts on its own workspace only: the workspace
// comes from the key, never from the request, so another workspace's
// profiles are exactly as absent (404) as ones that never existed.
type auth struct {
	keys *access.Keyring
	// rules returns a workspace's PII rules (pkg/sources); nil: none.
	rules func(ws string) []pii.Rule
}

func (a *auth) authorize(w http.ResponseWriter, r *http.Request, scope access.Scope) (access.Key, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		writeError(w, http.StatusUnauthorized, "send an admin key as Authorization: Bearer <key>")
		return access.Key{}, false
	}
	k, ok := a.keys.Authenticate(token)
	if !ok {
		msg := "unknown admin key; send an admin key as Authorization: Bearer <key>"
		if strings.HasPrefix(token, access.WriteKeyPrefix) {
			msg = "a write key can only send events to the collector; the API needs an admin key as Authorization: Bearer <key>"
		}
		writeError(w, http.StatusUnauthorized, msg)
		return access.Key{}, false
	}
	if !k.Has(scope) {
		writeError(w, http.StatusForbidden, "this key lacks the scope "+string(scope))
		return access.Key{}, false
	}
	return k, true
}

// redaction is how k sees personal data: nil (in clear) with pii:read.
func (a *auth) redaction(k access.Key) *pii.Redaction {
	if k.Has(access.PIIRead) {
		return nil
	}
	var rules []pii.Rule
	if a.rules != nil {
		rules = a.rules(k.Workspace)
	}
	return pii.NewRedaction(rules)
}
