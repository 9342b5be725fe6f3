package deps

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
	"github.com/firstparty/firstparty/pkg/topics"
)

// TestWiresRealServers connects an app to real Kafka, Redis and ClickHouse:
// topics and the database are created, /readyz reports each server, and
// shutdown closes the clients.
func TestWiresRealServers(t *testing.T) {
	kc := testinfra.Kafka(t)
	rc := testinfra.Redis(t)
	cc := testinfra.ClickHouse(t)
	names := topics.Defaults().WithPrefix(testinfra.Unique(t) + ".")
	t.Cleanup(func() { _ = kafkaclient.DeleteTopics(context.Background(), kc, names.All()...) })

	a := app.New("test", app.Config{HTTPAddr: "127.0.0.1:0", DrainTimeout: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := Kafka(ctx, a, kc, names.All()); err != nil {
		t.Fatal(err)
	}
	Redis(a, rc)
	conn, err := ClickHouse(ctx, a, cc)
	if err != nil {
		t.Fatal(err)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil || db != cc.Database {
		t.Fatalf("connected to database %q (%v), want %q", db, err, cc.Database)
	}
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	resp, err := http.Get("http://" + a.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, dep := range []string{`"kafka":"ok"`, `"redis":"ok"`, `"clickhouse":"ok"`} {
		if resp.StatusCode != 200 || !strings.Contains(string(body), dep) {
			t.Fatalf("readyz = %d %s, want %s", resp.StatusCode, body, dep)
		}
	}
	// Topics exist with the configured partitions.
	if err := kafkaclient.EnsureTopics(ctx, kc, names.Raw); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(context.Background()); err == nil {
		t.Error("clickhouse connection still open after shutdown")
	}
	_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cc.Database)
}
