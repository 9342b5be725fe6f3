package controlplane

import (
	"context"
	"errors"
	"testing"

	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/webhook"
)

func TestCheckTenantEdit(t *testing.T) {
	old := &sources.Workspace{ID: "w", PIISecretEnv: "FP_W_PII", Destinations: []webhook.Destination{{ID: "crm", URL: "https://crm.example/h", SecretEnv: "FP_W_CRM"}}}
	with := func(f func(*sources.Workspace)) sources.Workspace {
		w := *old
		w.Destinations = append([]webhook.Destination(nil), old.Destinations...)
		f(&w)
		return w
	}
	for _, tc := range []struct {
		name  string
		w     sources.Workspace
		field string // "": allowed
	}{
		{"unchanged", with(func(*sources.Workspace) {}), ""},
		{"pii secret of another workspace", with(func(w *sources.Workspace) { w.PIISecretEnv = "FP_OTHER_PII" }), "pii_secret_env"},
		{"pii secret removed", with(func(w *sources.Workspace) { w.PIISecretEnv = "" }), ""},
		{"destination secret changed", with(func(w *sources.Workspace) { w.Destinations[0].SecretEnv = "FP_OTHER_CRM" }), "destinations[crm].secret_env"},
		{"new destination, own secret", with(func(w *sources.Workspace) {
			w.Destinations = append(w.Destinations, webhook.Destination{ID: "ads", URL: "https://ads.example/h", SecretEnv: "FP_W_CRM"})
		}), ""},
		{"new destination, server secret", with(func(w *sources.Workspace) {
			w.Destinations = append(w.Destinations, webhook.Destination{ID: "ads", URL: "https://ads.example/h", SecretEnv: "PATH"})
		}), "destinations[ads].secret_env"},
		{"metadata url", with(func(w *sources.Workspace) { w.Destinations[0].URL = "https://169.254.169.254/latest/meta-data/" }), "destinations[crm].url"},
		{"loopback url", with(func(w *sources.Workspace) { w.Destinations[0].URL = "https://127.0.0.1:8123/" }), "destinations[crm].url"},
		{"http url", with(func(w *sources.Workspace) { w.Destinations[0].URL = "http://crm.example/h" }), "destinations[crm].url"},
	} {
		err := CheckTenantEdit(context.Background(), old, tc.w, webhook.URLPolicy{})
		var re *RefusedError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.field != "" && (!errors.As(err, &re) || re.Field != tc.field):
			t.Errorf("%s: %v, want refused at %s", tc.name, err, tc.field)
		}
	}
	// An operator's policy may allow http and internal hosts.
	w := with(func(w *sources.Workspace) { w.Destinations[0].URL = "http://10.0.0.5/h" })
	if err := CheckTenantEdit(context.Background(), old, w, webhook.URLPolicy{AllowHTTP: true, AllowPrivate: true}); err != nil {
		t.Errorf("allowed by the operator: %v", err)
	}
}
