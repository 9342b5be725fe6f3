package main

import (
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

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
)

// pipeline is the real collector, validator, stitcher and loader binaries
// running against the real servers for one workspace, for end-to-end
// tests of the API (erase, export).
type pipeline struct {
	t        *testing.T
	ws       string
	writeKey string
	kc       kafkaclient.Config
	names    topics.Names
	cc       chclient.Config
	ports    map[string]string
	conn     driver.Conn           // the test's database
	rdb      redis.UniversalClient // the servers' Redis
	producer *kafkaclient.Producer
}

// startPipeline builds and starts the four services (stopped at the end
// of the test) and waits until each is ready. sourcesYAML, when given, is
// the workspace's source entry ("{id: web, write_keys: [%s], …}" with %s
// for the write key). startPipelineWith varies it.
func startPipeline(t *testing.T, sourcesYAML ...string) *pipeline {
	t.Helper()
	var o pipelineOptions
	if len(sourcesYAML) > 0 {
		o.source = sourcesYAML[0]
	}
	return startPipelineWith(t, o)
}

// pipelineOptions vary the pipeline: source is as for startPipeline;
// services default to collector, validator, stitcher and loader; env is
// added to every service's environment (e.g. FP_CONFIG_SOURCE=topic).
type pipelineOptions struct {
	source   string
	services []string
	env      []string
}

func startPipelineWith(t *testing.T, o pipelineOptions) *pipeline {
	t.Helper()
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	rc := testinfra.Redis(t)
	cc := testinfra.ClickHouse(t)
	if testing.Short() {
		t.Skip("builds and runs four services")
	}
	pl := &pipeline{t: t, ws: testinfra.Unique(t), writeKey: "fpw_pipeline_test_key_0123456789", kc: kc, names: names, cc: cc, ports: map[string]string{}}
	src := "{id: web, write_keys: [%s]}"
	if o.source != "" {
		src = o.source
	}
	if o.services == nil {
		o.services = []string{"collector", "validator", "stitcher", "loader"}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "workspaces.yaml")
	if err := os.WriteFile(cfg, []byte("workspaces:\n  - id: "+pl.ws+"\n    sources:\n      - "+fmt.Sprintf(src, pl.writeKey)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, svc := range o.services {
		bin := filepath.Join(dir, svc)
		build := exec.Command("go", "build", "-o", bin, "./services/"+svc)
		build.Dir = "../.."
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", svc, err, out)
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		pl.ports[svc] = addr
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "FP_HTTP_ADDR="+addr, "FP_GRPC_ADDR=", "FP_SOURCES_FILE="+cfg, "FP_KAFKA_BROKERS="+kc.Brokers.String(),
			"FP_REDIS_ADDR="+rc.Addrs.String(), "FP_CLICKHOUSE_ADDR="+cc.Addrs.String(), "FP_CLICKHOUSE_DATABASE="+cc.Database,
			"FP_CONSUMER_GROUP="+pl.group(svc), "FP_CONSUMER_BATCH_WAIT=5ms", "FP_LOG_FORMAT=text")
		for k, v := range testinfra.TopicEnv(names) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if svc == "loader" {
			cmd.Env = append(cmd.Env, "FP_CONSUMER_BATCH_WAIT=100ms")
		}
		cmd.Env = append(cmd.Env, o.env...)
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
	conn, err := chclient.Open(cc, cc.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pl.conn = conn
	pl.rdb = redisclient.New(rc)
	t.Cleanup(func() { pl.rdb.Close() })
	p, err := kafkaclient.NewProducer(kc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pl.producer = p
	return pl
}

func (pl *pipeline) group(svc string) string { return pl.ws + "-" + svc }

// send posts a Tracking API batch to the collector; it must be accepted.
func (pl *pipeline) send(batch string) {
	pl.t.Helper()
	req, _ := http.NewRequest("POST", "http://"+pl.ports["collector"]+"/v1/batch", strings.NewReader(batch))
	req.SetBasicAuth(pl.writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		pl.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		pl.t.Fatalf("collector: %d %s", resp.StatusCode, b)
	}
}

// drained waits until every stage has committed everything on its input
// topics: what was sent has landed wherever it goes.
func (pl *pipeline) drained() {
	pl.t.Helper()
	for _, st := range []struct{ svc, topic string }{
		{"validator", pl.names.Raw}, {"stitcher", pl.names.Valid},
		{"loader", pl.names.Resolved}, {"loader", pl.names.Invalid}, {"loader", pl.names.Profiles},
	} {
		testinfra.WaitCaughtUp(pl.t, pl.kc, pl.group(st.svc), st.topic, time.Minute)
	}
}

// server is the API over the pipeline's Redis and ClickHouse.
func (pl *pipeline) server(keys map[string]access.Key) *httptest.Server {
	return testServer(pl.t, pl.rdb, pl.conn, pl.cc.Database, pl.producer, pl.names.Profiles, keys)
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

// eventually polls ok until it holds, for at most a minute.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond) // the poll interval, not a wait for an outcome
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("…%s", s[len(s)-n:])
	}
	return s
}
