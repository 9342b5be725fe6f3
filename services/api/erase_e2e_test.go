package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/testinfra"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// TestEraseEndToEnd runs the real collector, validator, stitcher and loader
// binaries against the real servers, sends a person's events, erases the
// person through the API, and checks they are gone from Redis and
// ClickHouse — and that sending their old events again does not bring
// them back.
func TestEraseEndToEnd(t *testing.T) {
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	rc := testinfra.Redis(t)
	cc := testinfra.ClickHouse(t)
	if testing.Short() {
		t.Skip("builds and runs four services")
	}
	ws := testinfra.Unique(t)
	const writeKey = "fpw_erase_test_key_0123456789"
	dir := t.TempDir()
	cfg := filepath.Join(dir, "workspaces.yaml")
	if err := os.WriteFile(cfg, []byte("workspaces:\n  - id: "+ws+"\n    sources:\n      - {id: web, write_keys: ["+writeKey+"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := map[string]string{}
	for _, svc := range []string{"collector", "validator", "stitcher", "loader"} {
		bin := filepath.Join(dir, svc)
		build := exec.Command("go", "build", "-o", bin, "./services/"+svc)
		build.Dir = "../.."
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", svc, err, out)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		ports[svc] = addr
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "FP_HTTP_ADDR="+addr, "FP_GRPC_ADDR=", "FP_SOURCES_FILE="+cfg, "FP_KAFKA_BROKERS="+kc.Brokers.String(),
			"FP_REDIS_ADDR="+rc.Addrs.String(), "FP_CLICKHOUSE_ADDR="+cc.Addrs.String(), "FP_CLICKHOUSE_DATABASE="+cc.Database,
			"FP_CONSUMER_GROUP="+ws+"-"+svc, "FP_CONSUMER_BATCH_WAIT=5ms", "FP_LOG_FORMAT=text")
		for k, v := range testinfra.TopicEnv(names) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if svc == "loader" {
			cmd.Env = append(cmd.Env, "FP_CONSUMER_BATCH_WAIT=100ms")
		}
		logf, _ := os.Create(filepath.Join(dir, svc+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("%s log:\n%s", svc, tail(string(b), 1500))
			}
		})
		waitReady(t, addr, svc)
	}

	batch := `{"batch": [
	  {"type": "identify", "messageId": "e-1", "anonymousId": "dev-1", "userId": "u-erase", "traits": {"email": "erase.me@example.com", "plan": "pro"}, "timestamp": "2026-11-20T10:00:00Z"},
	  {"type": "track", "messageId": "e-2", "anonymousId": "dev-1", "userId": "u-erase", "event": "Order Completed", "properties": {"revenue": 10}, "timestamp": "2026-11-20T10:01:00Z"},
	  {"type": "page", "messageId": "e-3", "anonymousId": "dev-1", "name": "Home", "timestamp": "2026-11-20T10:02:00Z"}
	], "sentAt": "2026-11-20T10:02:00Z"}`
	send := func() {
		req, _ := http.NewRequest("POST", "http://"+ports["collector"]+"/v1/batch", strings.NewReader(batch))
		req.SetBasicAuth(writeKey, "")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("collector: %d %s", resp.StatusCode, b)
		}
	}
	send()

	conn, err := chclient.Open(cc, cc.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows := func() uint64 {
		var n uint64
		err := conn.QueryRow(context.Background(), "SELECT count() FROM events WHERE workspace_id = ? AND (user_id = 'u-erase' OR anonymous_id = 'dev-1')", ws).Scan(&n)
		if err != nil && !strings.Contains(err.Error(), "doesn't exist") {
			t.Fatal(err)
		}
		return n
	}
	eventually(t, "the person's 3 events in ClickHouse", func() bool { return rows() == 3 })

	rdb := redisclient.New(rc)
	defer rdb.Close()
	graph := identity.New(rdb, identity.DefaultConfig())
	prof, err := graph.Lookup(context.Background(), ws, identity.Identifier{Type: "email", Value: "erase.me@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mux := http.NewServeMux()
	profiles := newProfileAPI(graph, segstate.New(rdb), map[string]string{"fpa_erase_admin_0123456789": ws}, p, names.Profiles)
	(&privacyAPI{profiles: profiles, svc: &privacy.Service{Graph: graph, Suppression: suppression.New(rdb), Redis: rdb,
		ClickHouse: conn, Database: cc.Database, Changes: p, Topic: names.Profiles}}).register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/privacy/erase", strings.NewReader(`{"identifier": "user_id:u-erase", "reason": "ticket 4711"}`))
	req.Header.Set("Authorization", "Bearer fpa_erase_admin_0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep privacy.Report
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Unmarshal(b, &rep) != nil || rep.Status != "completed" || rep.ProfileIDs[0] != prof.ID || len(rep.Suppressed) != 3 {
		t.Fatalf("erase: %d %s", resp.StatusCode, b)
	}

	gone := func(when string) {
		t.Helper()
		for _, id := range prof.Identities {
			if _, err := graph.Lookup(context.Background(), ws, id); err != identity.ErrNotFound {
				t.Fatalf("%s: %s still resolves (%v)", when, id, err)
			}
		}
		if n, _ := rdb.Exists(context.Background(), "fp:{"+ws+"}:p:"+prof.ID, "fp:{"+ws+"}:p:"+prof.ID+":t").Result(); n != 0 {
			t.Fatalf("%s: profile keys still in Redis", when)
		}
		if n := rows(); n != 0 {
			t.Fatalf("%s: %d of the person's events still in ClickHouse", when, n)
		}
		var ids uint64
		_ = conn.QueryRow(context.Background(), "SELECT count() FROM identities WHERE workspace_id = ? AND profile_id = ?", ws, prof.ID).Scan(&ids)
		if ids != 0 {
			t.Fatalf("%s: %d identity rows left", when, ids)
		}
	}
	gone("after erase")

	// Their old events come again (a replay): refused, not resurrected.
	before := testinfra.Count(t, kc, names.Invalid)
	send()
	eventually(t, "the replayed events refused as suppressed", func() bool { return testinfra.Count(t, kc, names.Invalid) >= before+3 })
	time.Sleep(2 * time.Second) // give anything that slipped through time to land
	gone("after the replay")
	rejections, _ := testinfra.Read(t, kc, names.Invalid, int(testinfra.Count(t, kc, names.Invalid)), func() *eventv1.Rejection { return &eventv1.Rejection{} })
	suppressed := 0
	for _, r := range rejections {
		for _, v := range r.Violations {
			if v.Reason == eventv1.Reason_REASON_SUPPRESSED {
				suppressed++
			}
		}
	}
	if suppressed < 3 {
		t.Fatalf("%d suppressed rejections, want the 3 replayed events", suppressed)
	}
	if reps, _ := (&privacy.Service{Redis: rdb}).Audit(context.Background(), ws, 10); len(reps) != 1 || reps[0].Reason != "ticket 4711" {
		t.Fatalf("audit log = %+v", reps)
	}
}

func waitReady(t *testing.T, addr, svc string) {
	t.Helper()
	eventually(t, svc+" ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("…%s", s[len(s)-n:])
	}
	return s
}
