package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

const (
	webKey     = "wk_web_test_0123456789abcdef"
	backendKey = "wk_backend_test_0123456789ab"
	revokedKey = "wk_revoked_test_0123456789ab"
	slowKey    = "wk_limited_test_0123456789ab"
)

const testSources = `
workspaces:
  - id: acme
    sources:
      - id: web
        write_keys: [` + webKey + `]
        allowed_origins: ["https://shop.example"]
      - id: backend
        write_keys: [` + backendKey + `]
      - id: old
        write_keys: [` + revokedKey + `]
        disabled: true
      - id: limited
        write_keys: [` + slowKey + `]
        rate_limit: {events_per_second: 1, burst: 3}
`

// harness is a collector running in-process against the real broker.
type harness struct {
	t        *testing.T
	base     string
	grpcAddr string
	kafka    kafkaclient.Config
	topics   topics.Names
	sources  string
}

func startCollector(t *testing.T, extra map[string]string) *harness {
	t.Helper()
	kc := testinfra.Kafka(t)
	names := testinfra.Topics(t, kc)
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "sources.yaml")
	if err := os.WriteFile(srcPath, []byte(testSources), 0o600); err != nil {
		t.Fatal(err)
	}
	grpcAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	env := testinfra.With(testinfra.TopicEnv(names), "FP_KAFKA_BROKERS", kc.Brokers.String(), "FP_SOURCES_FILE", srcPath,
		"FP_GRPC_ADDR", grpcAddr, "FP_SOURCES_RELOAD_INTERVAL", "50ms", "FP_DRAIN_TIMEOUT", "2s")
	for k, v := range extra {
		env[k] = v
	}
	a, _ := testinfra.StartService(t, "collector", &service{}, env)
	h := &harness{t: t, base: "http://" + a.Addr(), grpcAddr: grpcAddr, kafka: kc, topics: names, sources: srcPath}
	waitListening(t, grpcAddr)
	return h
}

type resp struct {
	status int
	header http.Header
	body   string
}

// post sends body to path with the given headers.
func (h *harness) post(path string, body []byte, headers map[string]string) resp {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, string(b)}
}

func basic(key string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))}
}

// readTopic returns the first n messages of topic, decoded by decode.
func readTopic[T proto.Message](t *testing.T, kc kafkaclient.Config, topic string, n int, newT func() T) ([]T, [][]byte) {
	t.Helper()
	cc := kafkaclient.ConsumerConfig{GroupID: testinfra.Unique(t), BatchSize: 1000, BatchWait: 20 * time.Millisecond, SessionTimeout: 6 * time.Second}
	c, err := kafkaclient.NewConsumer(kc, cc, nil, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []T
	var keys [][]byte
	for len(out) < n {
		batch, err := c.FetchBatch(ctx)
		if err != nil {
			t.Fatalf("reading %s: got %d of %d messages: %v", topic, len(out), n, err)
		}
		for _, m := range batch {
			v := newT()
			if err := proto.Unmarshal(m.Value, v); err != nil {
				t.Fatalf("message on %s is not a %T: %v", topic, v, err)
			}
			if kafkaclient.TraceID(m) == "" {
				t.Fatalf("message on %s has no trace id header", topic)
			}
			out = append(out, v)
			keys = append(keys, m.Key)
		}
	}
	return out, keys
}

func envelopes(t *testing.T, h *harness, n int) ([]*eventv1.Envelope, [][]byte) {
	return readTopic(t, h.kafka, h.topics.Raw, n, func() *eventv1.Envelope { return &eventv1.Envelope{} })
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, addr string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never listened", addr)
}

var httpClient = http.DefaultClient

func newRequest(method, url string) (*http.Request, error) { return http.NewRequest(method, url, nil) }
