// Package testinfra gives integration tests real Kafka, Redis and ClickHouse
// servers, never mocks.
//
// Endpoints come from the environment variables deploy/local/servers.sh
// prints (FP_KAFKA_BROKERS, FP_REDIS_ADDR, FP_CLICKHOUSE_ADDR). Where one is
// unset and a Docker engine answers, the server is started once per test
// binary with testcontainers-go. Otherwise the test is skipped with a message
// saying how to provide the server — unless FP_REQUIRE_SERVERS=1 (set by
// `make test` and CI), which turns the skip into a failure so a suite can
// never pass by running nothing.
package testinfra

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/topics"
)

const howTo = "start the local servers with `deploy/local/servers.sh start` and export the variables from `deploy/local/servers.sh env` (make test does both)"

// Kafka returns a client configuration for a real broker.
func Kafka(t testing.TB) kafkaclient.Config {
	t.Helper()
	brokers := endpoint(t, "FP_KAFKA_BROKERS", startKafka)
	var c kafkaclient.Config
	c.Brokers.Set(brokers)
	c.ClientID = "firstparty-test"
	c.Partitions = 3
	c.ReplicationFactor = 1
	c.CreateTopics = true
	c.BatchSize = 1000
	c.BatchBytes = 1 << 20
	c.BatchTimeout = 5 * time.Millisecond
	c.Compression = "lz4"
	c.WriteTimeout = 10 * time.Second
	c.DialTimeout = 5 * time.Second
	return c
}

// Redis returns a client configuration for a real Redis.
func Redis(t testing.TB) redisclient.Config {
	t.Helper()
	addr := endpoint(t, "FP_REDIS_ADDR", startRedis)
	return redisclient.Config{Addrs: config.List{addr}, DialTimeout: 5 * time.Second}
}

// ClickHouse returns a client configuration for a real ClickHouse, with a
// database name unique to the test (the test creates it).
func ClickHouse(t testing.TB) chclient.Config {
	t.Helper()
	addr := endpoint(t, "FP_CLICKHOUSE_ADDR", startClickHouse)
	return chclient.Config{
		Addrs:       config.List{addr},
		Database:    strings.ReplaceAll(Unique(t), "-", "_"),
		Username:    "default",
		DialTimeout: 5 * time.Second,
	}
}

// ClickHouseHTTP returns the base URL of the same ClickHouse's HTTP
// interface (FP_CLICKHOUSE_HTTP), for what the native protocol cannot do,
// such as reading rows in a text format.
func ClickHouseHTTP(t testing.TB) string {
	t.Helper()
	u := os.Getenv("FP_CLICKHOUSE_HTTP")
	if u == "" {
		absent(t, "FP_CLICKHOUSE_HTTP is not set: "+howTo)
	}
	return strings.TrimSuffix(u, "/")
}

// Topics returns topic names unique to the test, created on the broker and
// deleted when the test ends.
func Topics(t testing.TB, kc kafkaclient.Config) topics.Names {
	t.Helper()
	names := topics.Defaults().WithPrefix(Unique(t) + ".")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaclient.EnsureTopics(ctx, kc, names.All()...); err != nil {
		t.Fatalf("creating test topics: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = kafkaclient.DeleteTopics(ctx, kc, names.All()...)
	})
	return names
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// Unique returns a name for the test that no other test or run shares:
// usable as a topic prefix, consumer group, Redis key prefix or database.
func Unique(t testing.TB) string {
	name := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	id := fmt.Sprintf("t-%s-%09d", name, time.Now().UnixNano()%1e9)
	// A workspace named after the id keeps its Redis keys under
	// "fp:{<id>...}" (the nine digits are fixed-width, so no other test's
	// id starts with this one): they go when the test ends, so a shared Redis does
	// not fill up with what the suite wrote (which slowed later benchmarks
	// on the same server: larger rewrites of the append-only file).
	t.Cleanup(func() { dropWorkspaceKeys(id) })
	return id
}

type started struct {
	once sync.Once
	addr string
	err  error
}

var containers = map[string]*started{
	"FP_KAFKA_BROKERS":   {},
	"FP_REDIS_ADDR":      {},
	"FP_CLICKHOUSE_ADDR": {},
}

func endpoint(t testing.TB, env string, start func(context.Context) (string, error)) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		if err := reachable(v); err != nil {
			t.Fatalf("%s=%s is set but nothing answers there: %v (%s)", env, v, err, howTo)
		}
		return v
	}
	if dockerAvailable() {
		s := containers[env]
		s.once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			s.addr, s.err = start(ctx)
		})
		if s.err != nil {
			t.Fatalf("starting a container for %s: %v", env, s.err)
		}
		return s.addr
	}
	absent(t, fmt.Sprintf("%s is not set and no Docker engine answers: %s", env, howTo))
	return ""
}

// absent skips the test for a server that is not there, or fails it under
// FP_REQUIRE_SERVERS=1, so a suite can never pass by running nothing.
func absent(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("FP_REQUIRE_SERVERS") == "1" {
		t.Fatal(msg + " (FP_REQUIRE_SERVERS=1 forbids skipping)")
	}
	t.Skip(msg)
}

// reachable checks the first address of a comma-separated list.
func reachable(list string) error {
	addr := strings.TrimSpace(strings.Split(list, ",")[0])
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}
