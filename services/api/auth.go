package main

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/tap"

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

// authorize authenticates the call's key (metadata "authorization:
// Bearer <key>"; the gateway passes the HTTP header on) and checks scope.
func (a *auth) authorize(ctx context.Context, scope access.Scope) (access.Key, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	k, err := a.authenticateMD(md)
	if err != nil {
		return k, err
	}
	if !k.Has(scope) {
		return access.Key{}, rpcError(codes.PermissionDenied, "this key lacks the scope "+string(scope), withScope(string(scope)))
	}
	return k, nil
}

// authenticateMD finds the key of a call's metadata, which must hold
// exactly one authorization value (two could name different keys).
func (a *auth) authenticateMD(md metadata.MD) (access.Key, error) {
	v := md.Get("authorization")
	if len(v) > 1 {
		return access.Key{}, rpcError(codes.Unauthenticated, "send one admin key, as Authorization: Bearer <key>, not several")
	}
	var header string
	if len(v) == 1 {
		header = v[0]
	}
	return a.authenticate(header)
}

// tap refuses a gRPC call of the admin API without a known key before its
// message is read (as the REST face does before reading a body); the
// methods check the key again, with its scope. Health and reflection are
// open.
func (a *auth) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if !strings.HasPrefix(info.FullMethodName, "/firstparty.api.") {
		return ctx, nil
	}
	if _, err := a.authenticateMD(info.Header); err != nil {
		return ctx, err
	}
	return ctx, nil
}

// authenticate finds the key of an Authorization header value.
func (a *auth) authenticate(header string) (access.Key, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return access.Key{}, rpcError(codes.Unauthenticated, "send an admin key as Authorization: Bearer <key>")
	}
	k, ok := a.keys.Authenticate(token)
	if !ok {
		msg := "unknown admin key; send an admin key as Authorization: Bearer <key>"
		if strings.HasPrefix(token, access.WriteKeyPrefix) {
			msg = "a write key can only send events to the collector; the API needs an admin key as Authorization: Bearer <key>"
		}
		return access.Key{}, rpcError(codes.Unauthenticated, msg)
	}
	return k, nil
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
