package sources

import "testing"

// FuzzParse: the configuration file is outside input (and the body of the
// API's POST /v1/config:apply): whatever it holds, Parse answers a
// registry or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("workspaces: [{id: shop, sources: [{id: web, write_keys: [fpw_0123456789abcdef]}]}]"))
	f.Add([]byte("workspaces:\n  - id: shop\n    consent: {required: [analytics]}\n    sources:\n      - {id: web, write_keys: [fpw_0123456789abcdef], pii: [{path: context.ip, action: mask}], tracking_plan: {id: p, version: 1, events: {}}}\n    segments: [{id: vip, version: 1, name: VIP, condition: 'revenue >= 5.0', aggregates: {revenue: {sum: {event: X, property: revenue, within: 90d}}}}]\n"))
	f.Add([]byte("workspaces: [{id: a, identity: {limits: {email: 2}}, destinations: [{id: d, url: 'https://x/h', secret_env: NOPE}]}]"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		reg, err := Parse(data)
		if err == nil && reg == nil {
			t.Fatal("no registry and no error")
		}
	})
}
