package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The schema is a list of migrations, migrations/NNNN_name.sql, applied in
// order at start and recorded in schema_migrations, so a second start
// applies nothing. A migration is never edited once released: its checksum
// is recorded, and a loader whose copy differs refuses to start. Change the
// schema with a new file (ALTER TABLE ... ADD COLUMN, DROP VIEW + CREATE
// VIEW).
//
// Every statement is idempotent (IF NOT EXISTS), so a migration that was
// interrupted, or that two loaders started at once both apply, is simply
// applied again.
//
// The files are templates, so the same schema can be created on one server
// or on a cluster:
//
//	{{.DB}}                        the database (statements name it, as ON CLUSTER needs)
//	{{.OnCluster}}                 "" or " ON CLUSTER <name>"
//	{{replacing "table" "column"}} ReplacingMergeTree(column), or on a cluster
//	                               ReplicatedReplacingMergeTree('<zk path>', '{replica}', column)
//
// On a cluster (-clickhouse.cluster) every node of the cluster gets the
// tables as replicas of one another (ZooKeeper path
// /clickhouse/tables/{shard}/<db>/<table>, macros {shard} and {replica} from
// each server's config), and the loader may insert into any node. Sharding
// across several shards needs, in addition, Distributed tables over these
// with a sharding key that keeps one message's copies on one shard (for
// events cityHash64(workspace_id, source_id, message_id)), inserts with
// insert_distributed_sync=1 so an acknowledged insert is durable, and
// GLOBAL joins in events_current; that layer is not created yet.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one schema change.
type Migration struct {
	Version  uint32
	Name     string
	Checksum string // of the template, so single-node and cluster agree
	source   string
}

// SchemaOptions choose how the schema is created.
type SchemaOptions struct {
	// Database the tables live in.
	Database string
	// Cluster, when set, creates every object ON CLUSTER with replicated
	// engines.
	Cluster string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations returns every migration in order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", e.Name())
		}
		src, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		sum := sha256.Sum256(src)
		ms = append(ms, Migration{Version: uint32(v), Name: m[2], Checksum: hex.EncodeToString(sum[:]), source: string(src)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := range ms {
		if ms[i].Version != uint32(i+1) {
			return nil, fmt.Errorf("migrations must be numbered 1, 2, 3, … without gaps; %04d_%s is number %d", ms[i].Version, ms[i].Name, i+1)
		}
	}
	return ms, nil
}

// Statements renders the migration for o and splits it into statements.
func (m Migration) Statements(o SchemaOptions) ([]string, error) {
	tmpl, err := template.New(m.Name).Funcs(template.FuncMap{
		"replacing": func(table, version string) string { return o.replacing(table, version) },
	}).Option("missingkey=error").Parse(m.source)
	if err != nil {
		return nil, fmt.Errorf("parsing migration %04d_%s: %w", m.Version, m.Name, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, o.templateData()); err != nil {
		return nil, fmt.Errorf("rendering migration %04d_%s: %w", m.Version, m.Name, err)
	}
	return splitStatements(buf.String()), nil
}

func (o SchemaOptions) templateData() map[string]string {
	d := map[string]string{"DB": o.Database, "OnCluster": ""}
	if o.Cluster != "" {
		d["OnCluster"] = " ON CLUSTER " + o.Cluster
	}
	return d
}

func (o SchemaOptions) replacing(table, version string) string {
	if o.Cluster == "" {
		return "ReplacingMergeTree(" + version + ")"
	}
	return fmt.Sprintf("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/%s/%s', '{replica}', %s)", o.Database, table, version)
}

// splitStatements drops whole-line comments and splits on semicolons that
// end a line (the migrations put no semicolon inside a string literal).
func splitStatements(sql string) []string {
	var lines []string
	for _, l := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, s := range strings.Split(strings.Join(lines, "\n"), ";\n") {
		if s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";")); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (o SchemaOptions) migrationsTable() string {
	engine := "ReplacingMergeTree(applied_at)"
	if o.Cluster != "" {
		engine = o.replacing("schema_migrations", "applied_at")
	}
	on := o.templateData()["OnCluster"]
	return `CREATE TABLE IF NOT EXISTS ` + o.Database + `.schema_migrations` + on + ` (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime('UTC')
) ENGINE = ` + engine + `
ORDER BY version`
}

// acceptedChecksums are earlier texts of released migrations that were
// mended without changing what they create where they had been applied, so
// a schema recorded with one of them is the schema of today's file.
//
//   - 0002: the first release joined an unnamed subquery in events_current,
//     which current ClickHouse refuses (joined_subquery_requires_alias), so
//     it only ever applied on 18.16, where the named form builds the same
//     view.
var acceptedChecksums = map[uint32][]string{
	2: {"86a1e8a28d9ad9ede75c06017e9f0b7362bb3f53eef54132c0e620b5d5a62c7f"},
}

// sameMigration reports whether a recorded checksum is m's.
func sameMigration(m Migration, recorded string) bool {
	return recorded == m.Checksum || slices.Contains(acceptedChecksums[m.Version], recorded)
}

// Migrate applies the migrations not yet recorded in schema_migrations and
// returns the versions it applied (none on a second start). A recorded
// migration whose checksum differs from this binary's is an error: the
// schema and the code would disagree.
func Migrate(ctx context.Context, conn driver.Conn, o SchemaOptions, log *slog.Logger) ([]uint32, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	if err := conn.Exec(ctx, o.migrationsTable()); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn, o.Database)
	if err != nil {
		return nil, err
	}
	known := map[uint32]bool{}
	var done []uint32
	for _, m := range ms {
		known[m.Version] = true
		if sum, ok := applied[m.Version]; ok {
			if !sameMigration(m, sum) {
				return done, fmt.Errorf("migration %04d_%s was changed after it was applied (checksum %s recorded, %s now): add a new migration instead of editing a released one", m.Version, m.Name, short(sum), short(m.Checksum))
			}
			continue
		}
		stmts, err := m.Statements(o)
		if err != nil {
			return done, err
		}
		for i, s := range stmts {
			if err := conn.Exec(ctx, s); err != nil {
				return done, fmt.Errorf("applying migration %04d_%s, statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigration(ctx, conn, o.Database, m, time.Now()); err != nil {
			return done, fmt.Errorf("recording migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if log != nil {
			log.Info("schema migration applied", "version", m.Version, "name", m.Name, "database", o.Database, "cluster", o.Cluster)
		}
		done = append(done, m.Version)
	}
	for v := range applied {
		if !known[v] && log != nil {
			// A newer loader migrated further (a rolling upgrade): migrations
			// only add, so this binary's inserts still fit.
			log.Warn("schema has a migration this loader does not know", "version", v)
		}
	}
	return done, nil
}

// recordMigration inserts through a batch: an INSERT ... VALUES sent with
// Exec leaves 18.16 waiting for a data block that never comes.
func recordMigration(ctx context.Context, conn driver.Conn, db string, m Migration, at time.Time) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	if err := b.Append(m.Version, m.Name, m.Checksum, at.UTC()); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

func appliedMigrations(ctx context.Context, conn driver.Conn, db string) (map[uint32]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, argMax(checksum, applied_at) FROM "+db+".schema_migrations GROUP BY version")
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	defer rows.Close()
	out := map[uint32]string{}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, fmt.Errorf("reading schema_migrations: %w", err)
		}
		out[v] = sum
	}
	return out, rows.Err()
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
