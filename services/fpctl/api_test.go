package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

const (
	opKey = "fpa_fpctl_operator_0123456789"
	wsKey = "fpa_fpctl_workspace_012345678"
)

// startAPI builds and runs the real API with the control plane on a
// config topic of its own; it returns its URL.
func startAPI(t *testing.T, ws string) string {
	t.Helper()
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	rc, cc := testinfra.Redis(t), testinfra.ClickHouse(t)
	configTopic := testinfra.Unique(t) + ".cdp.config"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = kafkaclient.DeleteTopics(ctx, kc, configTopic)
	})
	dir := t.TempDir()
	bin := filepath.Join(dir, "api")
	build := exec.Command("go", "build", "-o", bin, "./services/api")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the api: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "FP_HTTP_ADDR="+addr, "FP_KAFKA_BROKERS="+kc.Brokers.String(), "FP_REDIS_ADDR="+rc.Addrs.String(),
		"FP_CLICKHOUSE_ADDR="+cc.Addrs.String(), "FP_GRPC_ADDR=127.0.0.1:0", "FP_CLICKHOUSE_DATABASE="+cc.Database, "FP_LOG_FORMAT=text",
		"FP_CONFIG_SOURCE=topic", "FP_TOPIC_CONFIG="+configTopic, "FP_ADMIN_KEYS="+opKey+"=*,"+wsKey+"="+ws)
	for k, v := range testinfra.TopicEnv(names) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("api log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the api did not get ready within a minute")
		}
		time.Sleep(100 * time.Millisecond) // the poll interval, not a wait for an outcome
	}
}

// fpctl runs the command in-process and returns its exit code and output.
func fpctl(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestAgainstAPI: apply (dry run, real, again, invalid), sources and
// keys, profile get and the exit codes, against the real API.
func TestAgainstAPI(t *testing.T) {
	ws := testinfra.Unique(t)
	url := startAPI(t, ws)
	op := map[string]string{"FP_API_URL": url, "FP_ADMIN_KEY": opKey}
	own := map[string]string{"FP_API_URL": url, "FP_ADMIN_KEY": wsKey}
	file := filepath.Join(t.TempDir(), "config.yaml")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("workspaces:\n  - id: %s\n    sources: [{id: web, write_keys: [fpw_fpctl_test_key_000001]}]\n    segments: [{id: vip, version: 1, name: VIP, condition: 'true'}]\n", ws))

	for _, step := range []struct {
		env  map[string]string
		args []string
		code int
		out  string // substring of stdout (or of stderr when code != 0)
	}{
		{op, []string{"apply", "-f", file, "--dry-run"}, 0, "would apply (dry run): 1 workspace(s)"},
		{own, []string{"workspace", "get", ws}, 1, "404 Not Found: workspace " + ws + " not found"},
		{own, []string{"apply", "-f", file}, 0, "skipped    " + ws + ": the workspace does not exist, and creating one needs an operator key"},
		{op, []string{"apply", "-f", file}, 0, "create     " + ws},
		{op, []string{"apply", "-f", file, "--json"}, 0, `"action": "unchanged"`},
		{own, []string{"workspace", "get", ws, "--json"}, 0, `"fpw_fpctl_test_key_000001"`},
		{own, []string{"sources", "create", ws, "app", "--name", "App"}, 0, "write key: fpw_"},
		{own, []string{"keys", "revoke", ws, "web", "fpw_fpctl_test_key_000001"}, 0, "has 0 key(s) left"},
		{own, []string{"keys", "rotate", ws, "web"}, 0, "new write key: fpw_"},
		{own, []string{"keys", "revoke", ws, "web", "fpw_fpctl_test_key_000001"}, 1, "not a key of source web"},
		{own, []string{"profile", "get", "user_id:nobody"}, 1, "404 Not Found"},
		{own, []string{"profile", "get", "nobody"}, 2, "not an identifier"},
		{map[string]string{"FP_API_URL": "http://127.0.0.1:1", "FP_ADMIN_KEY": wsKey}, []string{"profile", "get", "user_id:1"}, 3, "calling http://127.0.0.1:1"},
		{map[string]string{"FP_API_URL": url, "FP_ADMIN_KEY": "fpa_unknown_key_0123456789"}, []string{"profile", "get", "user_id:1"}, 1, "401 Unauthorized: unknown admin key"},
	} {
		code, out, errOut := fpctl(t, step.env, step.args...)
		got := out
		if step.code != 0 {
			got = errOut
		}
		if code != step.code || !strings.Contains(got, step.out) {
			t.Fatalf("fpctl %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q", strings.Join(step.args, " "), code, out, errOut, step.code, step.out)
		}
	}

	// An invalid file: the compiler's message, exit 1, nothing written.
	write(fmt.Sprintf("workspaces:\n  - id: %s\n    sources: []\n    segments: [{id: vip, version: 1, name: VIP, condition: 'traits.plan =='}]\n", ws))
	if code, _, errOut := fpctl(t, op, "apply", "-f", file); code != 1 || !strings.Contains(errOut, "400 Bad Request") || !strings.Contains(errOut, "segments[0] (vip)") {
		t.Fatalf("invalid file: exit %d %s", code, errOut)
	}

	// profile get reads a profile the identity graph holds.
	rdb := redisclient.New(testinfra.Redis(t))
	defer rdb.Close()
	if _, err := identity.New(rdb, identity.DefaultConfig()).Apply(context.Background(), identity.Update{Workspace: ws, MessageID: "m1",
		Time:        time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		Identifiers: []identity.Identifier{{Type: "user_id", Value: "42"}, {Type: "email", Value: "ann@x.io"}},
		Traits:      map[string]json.RawMessage{"plan": json.RawMessage(`"pro"`)}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := fpctl(t, own, "profile", "get", "email:ann@x.io")
	var p struct {
		ProfileID string         `json:"profile_id"`
		Traits    map[string]any `json:"traits"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &p) != nil || p.ProfileID == "" || p.Traits["plan"] != "pro" {
		t.Fatalf("profile get: exit %d\n%s%s", code, out, errOut)
	}
}

// TestSegmentsAndDestinations: segments and destinations list, get,
// apply (one or a list, YAML) and delete against the real API, with the
// API's refusals as exit code 1 naming the field.
func TestSegmentsAndDestinations(t *testing.T) {
	ws := testinfra.Unique(t)
	t.Setenv("FP_TEST_FPCTL_CRM_SECRET", "0123456789abcdef0123") // the API reads it when the destination is saved
	url := startAPI(t, ws)
	op := map[string]string{"FP_API_URL": url, "FP_ADMIN_KEY": opKey}
	own := map[string]string{"FP_API_URL": url, "FP_ADMIN_KEY": wsKey}
	dir := t.TempDir()
	file := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	config := file("config.yaml", fmt.Sprintf("workspaces:\n  - id: %s\n    sources: []\n", ws))
	segs := file("segments.yaml", `
- id: vip
  version: 1
  name: VIP
  condition: spend >= 500.0
  aggregates: {spend: {sum: {event: "Order Completed", property: revenue, within: 90d}}}
- {id: dormant, version: 1, name: Dormant, condition: gone, aggregates: {gone: {inactive: {within: 30d}}}}
`)
	badSeg := file("bad.yaml", "{id: vip, version: 1, name: VIP, condition: 'spend >='}")
	dest := file("crm.yaml", "id: crm\nurl: https://crm.example/hook\nsecret_env: FP_TEST_FPCTL_CRM_SECRET\nsegments: [vip]\ntimeout: 5s\n")
	noID := file("noid.yaml", "url: https://crm.example/hook\n")

	for _, step := range []struct {
		env  map[string]string
		args []string
		code int
		out  string // substring of stdout (or of stderr when code != 0)
	}{
		{op, []string{"apply", "-f", config}, 0, "create     " + ws},
		{own, []string{"segments", "list", ws}, 0, "0 segments in workspace " + ws + " (version 1)"},
		{own, []string{"segments", "apply", ws, "-f", segs}, 0, "segment dormant saved (workspace " + ws + " now at version 3)"},
		{own, []string{"segments", "apply", ws, "-f", badSeg}, 1, "(field segments[vip].condition)"},
		{own, []string{"segments", "list", ws}, 0, "2 segments in workspace " + ws + " (version 3)"},
		{own, []string{"segments", "list", ws}, 0, "spend >= 500.0"},
		{own, []string{"segments", "get", ws, "vip"}, 0, `"within": "2160h0m0s"`},
		{own, []string{"segments", "get", ws, "nope"}, 1, "segment nope not found in workspace " + ws},
		{own, []string{"destinations", "apply", ws, "-f", noID}, 1, "has no id"},
		{own, []string{"destinations", "apply", ws, "-f", dest}, 1, "403 Forbidden"},
		{op, []string{"destinations", "apply", ws, "-f", dest}, 0, "destination crm saved (workspace " + ws + " now at version 4)"},
		{own, []string{"destinations", "list", ws}, 0, "https://crm.example/hook"},
		{own, []string{"destinations", "list", ws, "--json"}, 0, `"timeout": "5s"`},
		{own, []string{"segments", "delete", ws, "vip"}, 1, `segment "vip" is not defined`},
		{own, []string{"destinations", "delete", ws, "crm"}, 0, "destination crm deleted (workspace " + ws + " now at version 5)"},
		{own, []string{"segments", "delete", ws, "vip"}, 0, "segment vip deleted"},
		{own, []string{"segments", "delete", ws, "vip"}, 1, "404 Not Found: segment vip not found"},
		{own, []string{"segments", "list", ws + "-other"}, 1, "404 Not Found: workspace " + ws + "-other not found"},
	} {
		code, out, errOut := fpctl(t, step.env, step.args...)
		got := out
		if step.code != 0 {
			got = errOut
		}
		if code != step.code || !strings.Contains(got, step.out) {
			t.Fatalf("fpctl %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d and %q", strings.Join(step.args, " "), code, out, errOut, step.code, step.out)
		}
	}
}
