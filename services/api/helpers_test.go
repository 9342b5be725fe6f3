package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/stage"
)

// testServer serves every endpoint over rdb (and ch, when not nil) with
// the given keys; rules are the workspaces' PII rules.
func testServer(t *testing.T, rdb redis.UniversalClient, ch driver.Conn, db string, changes stage.Sink, topic string, keys map[string]access.Key, rules ...pii.Rule) *httptest.Server {
	t.Helper()
	a := newAPI(&auth{keys: access.Static(keys), rules: func(string) []pii.Rule { return rules }}, rdb, ch, db, changes, topic)
	return serve(t, a)
}

// serve serves a's REST face (through the gateway, as in production).
func serve(t *testing.T, a *api) *httptest.Server {
	t.Helper()
	gs := a.grpcServer(newRPCMetrics(nil, nil))
	gw, err := a.gateway(context.Background(), gs)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.register(mux, gw)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); _ = gw.Close(); gs.Stop() })
	return srv
}

// call sends one request and returns the status and body.
func call(t *testing.T, srv *httptest.Server, method, path, key, body string) (int, string) {
	t.Helper()
	return callAs(t, srv, method, path, key, "", body)
}

// callAs is call with a Content-Type ("": none).
func callAs(t *testing.T, srv *httptest.Server, method, path, key, contentType, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, compact(b)
}

// compact is a JSON body without insignificant white space (protojson
// varies it on purpose), so tests can look for fragments; other bodies
// as they are.
func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return string(b)
	}
	return buf.String()
}

// decodeProto reads a JSON answer into m, failing the test if it does not
// parse.
func decodeProto(t *testing.T, body string, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(body), m); err != nil {
		t.Fatalf("answer does not parse as %T: %v\n%s", m, err, body)
	}
}
