package controlplane

import (
	"context"
	"net"
	"time"

	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/webhook"
)

// RefusedError is an edit a workspace's own key may not make; Field names
// the field at fault.
type RefusedError struct{ Msg, Field string }

func (e *RefusedError) Error() string { return e.Msg }

// CheckTenantEdit checks an edit of a workspace made with the workspace's
// own key (not an operator key: operators and the configuration file are
// trusted as they are). old is the workspace as it is (nil: new).
//
//   - Fields naming server environment variables (pii_secret_env, a
//     destination's secret_env) hold secrets of the server, any
//     workspace's among them, so only an operator key sets or changes
//     them. A workspace key may keep them as they are, and may give a
//     destination a secret_env one of the workspace's destinations
//     already uses (its own secret).
//   - A destination URL that is new or changed must pass policy (https;
//     no loopback, private or link-local host, also after resolving it);
//     the segmenter checks the address it dials again at delivery.
func CheckTenantEdit(ctx context.Context, old *sources.Workspace, w sources.Workspace, policy webhook.URLPolicy) error {
	var cur sources.Workspace
	if old != nil {
		cur = *old
	}
	if w.PIISecretEnv != "" && w.PIISecretEnv != cur.PIISecretEnv {
		return &RefusedError{"pii_secret_env names an environment variable of the server; only an operator key (workspace *) may set or change it", "pii_secret_env"}
	}
	before := map[string]webhook.Destination{}
	secrets := map[string]bool{}
	for _, d := range cur.Destinations {
		before[d.ID] = d
		secrets[d.SecretEnv] = true
	}
	for _, d := range w.Destinations {
		field := "destinations[" + d.ID + "]"
		prev, existed := before[d.ID]
		if d.SecretEnv != "" && !(existed && prev.SecretEnv == d.SecretEnv) && !secrets[d.SecretEnv] {
			return &RefusedError{"secret_env names an environment variable of the server; only an operator key (workspace *) may set or change it (a workspace key may reuse one of the workspace's destinations' secret_env)", field + ".secret_env"}
		}
		if !existed || prev.URL != d.URL {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err := policy.Check(ctx, net.DefaultResolver, d.URL)
			cancel()
			if err != nil {
				return &RefusedError{err.Error(), field + ".url"}
			}
		}
	}
	return nil
}
