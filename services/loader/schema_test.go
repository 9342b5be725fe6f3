package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/testinfra"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSchemaGolden pins the DDL the migrations render, for one server and
// for a cluster (which is not exercised against a real cluster here).
func TestSchemaGolden(t *testing.T) {
	for _, tc := range []struct {
		file string
		opts SchemaOptions
	}{
		{"schema_single.sql", SchemaOptions{Database: "firstparty"}},
		{"schema_cluster.sql", SchemaOptions{Database: "firstparty", Cluster: "cdp"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := renderSchema(t, tc.opts)
			golden := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestSchemaGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rendered schema differs from %s (go test -run TestSchemaGolden -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

func renderSchema(t *testing.T, o SchemaOptions) string {
	t.Helper()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("-- bookkeeping, created before the migrations run\n" + o.migrationsTable() + ";\n")
	for _, m := range ms {
		stmts, err := m.Statements(o)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n-- migration " + m.Name + "\n")
		for _, s := range stmts {
			b.WriteString(s + ";\n")
		}
	}
	return b.String()
}

// testDB creates a database unique to the test on the real ClickHouse and
// drops it at the end.
func testDB(t testing.TB) (driver.Conn, chclient.Config) {
	t.Helper()
	cc := testinfra.ClickHouse(t)
	ctx := context.Background()
	admin, err := chclient.Open(cc, "default")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cc.Database)
		admin.Close()
	})
	if err := admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cc.Database); err != nil {
		t.Fatal(err)
	}
	conn, err := chclient.Open(cc, cc.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, cc
}

func migrated(t testing.TB) (driver.Conn, chclient.Config) {
	t.Helper()
	conn, cc := testDB(t)
	if _, err := Migrate(context.Background(), conn, SchemaOptions{Database: cc.Database}, nil); err != nil {
		t.Fatal(err)
	}
	return conn, cc
}

// TestMigrateOnce applies the schema to a real 18.16 server, then starts
// again: the second start applies nothing, and an edited migration is
// refused.
func TestMigrateOnce(t *testing.T) {
	conn, cc := testDB(t)
	ctx := context.Background()
	o := SchemaOptions{Database: cc.Database}
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	first, err := Migrate(ctx, conn, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(ms) || first[0] != 1 {
		t.Fatalf("first start applied %v, want all %d migrations", first, len(ms))
	}
	second, err := Migrate(ctx, conn, o, nil)
	if err != nil || len(second) != 0 {
		t.Fatalf("second start applied %v (%v), want nothing", second, err)
	}
	var recorded uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM schema_migrations FINAL").Scan(&recorded); err != nil || recorded != uint64(len(ms)) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", recorded, err, len(ms))
	}
	var tables []string
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ? ORDER BY name", cc.Database)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	want := []string{"events", "events_current", "identities", "profile_changes", "rejected_events", "schema_migrations", "segment_memberships"}
	if !slices.Equal(tables, want) {
		t.Fatalf("tables %v, want %v", tables, want)
	}

	// A schema recorded with 0002's first release (applied on 18.16 before
	// it was mended for current ClickHouse) is today's schema.
	if err := recordMigration(ctx, conn, cc.Database, Migration{Version: 2, Name: "identities", Checksum: acceptedChecksums[2][0]}, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if again, err := Migrate(ctx, conn, o, nil); err != nil || len(again) != 0 {
		t.Fatalf("schema of 0002's first release: applied %v, err = %v; want nothing and no error", again, err)
	}

	// A released migration that was edited is refused, naming it.
	if err := recordMigration(ctx, conn, cc.Database, Migration{Version: 1, Name: "events", Checksum: "edited"}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(ctx, conn, o, nil); err == nil || !strings.Contains(err.Error(), "0001_events was changed") {
		t.Fatalf("edited migration: err = %v, want a refusal naming 0001_events", err)
	}
}
