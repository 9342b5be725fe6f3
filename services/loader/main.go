// Command loader writes every resolved event, rejection, profile change and
// segment transition to ClickHouse, committing Kafka offsets only after
// ClickHouse acknowledged the insert.
//
// At start it applies the schema migrations (migrations/*.sql, recorded in
// schema_migrations). Then one consumer group reads cdp.events.resolved,
// cdp.events.invalid, cdp.profiles.changes and cdp.segments.membership; each
// Kafka batch becomes one insert per table (events, rejected_events,
// profile_changes, segment_memberships, identities). The tables are
// ReplacingMergeTree keyed so that a redelivered message collapses onto its
// first copy: delivery is at least once, the effect exactly once.
// COOKBOOK.md has the queries a data team runs on them.
package main

import (
	"context"
	"flag"
	"os"
	"regexp"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka      kafkaclient.Config
	consumer   kafkaclient.ConsumerConfig
	topics     topics.Names
	clickhouse chclient.Config
	cluster    string
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "loader")
	s.consumer.RegisterFlags(fs, "loader")
	// ClickHouse wants few, large inserts: every insert writes a part (a
	// fixed cost of ~0.1 s per part here, and too many parts are refused),
	// so the loader reads far larger batches than the other stages and waits
	// up to a second for one to fill. 10,000 events of ~1.5 kB keep a batch
	// in memory well under 100 MB.
	config.SetDefault(fs, "consumer.batch-size", "10000")
	config.SetDefault(fs, "consumer.batch-wait", "1s")
	s.topics.RegisterFlags(fs)
	s.clickhouse.RegisterFlags(fs)
	fs.StringVar(&s.cluster, "clickhouse.cluster", "", "ClickHouse cluster (remote_servers) to create the schema on, ON CLUSTER with ReplicatedReplacingMergeTree tables (needs ZooKeeper and the {shard} and {replica} macros); empty: one server")
}

var clusterName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (s *service) Validate() error {
	if s.cluster != "" && !clusterName.MatchString(s.cluster) {
		return config.Field("clickhouse.cluster", "%q is not a plain identifier (letters, digits, _)", s.cluster)
	}
	return config.ValidateAll(&s.kafka, &s.consumer, &s.topics, &s.clickhouse)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	if _, err := deps.Kafka(ctx, a, s.kafka, s.topics.All()); err != nil {
		return err
	}
	conn, err := deps.ClickHouse(ctx, a, s.clickhouse)
	if err != nil {
		return err
	}
	if _, err := Migrate(ctx, conn, SchemaOptions{Database: s.clickhouse.Database, Cluster: s.cluster}, a.Log); err != nil {
		return err
	}
	h := newHandler(conn, s.topics, a.Registry)
	// No producer: the loader's only output is ClickHouse.
	return deps.Stage(a, "loader", s.kafka, s.consumer, nil, h,
		s.topics.Resolved, s.topics.Invalid, s.topics.Profiles, s.topics.Membership)
}

func main() { os.Exit(app.Main("loader", ":8084", &service{})) }
