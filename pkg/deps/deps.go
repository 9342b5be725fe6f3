// Package deps wires the servers a service depends on onto its app.App:
// each connection gets a readiness check (so /readyz is 200 only when the
// server answers) and a closer (so shutdown releases it after the
// components that use it have drained).
package deps

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/stage"
)

// Kafka creates the topics (when configured to), adds the readiness check
// and returns a producer closed at shutdown.
func Kafka(ctx context.Context, a *app.App, c kafkaclient.Config, topics []string) (*kafkaclient.Producer, error) {
	if c.CreateTopics && len(topics) > 0 {
		if err := waitFor(ctx, a, "kafka", func(ctx context.Context) error {
			return kafkaclient.EnsureTopics(ctx, c, topics...)
		}); err != nil {
			return nil, fmt.Errorf("creating topics: %w", err)
		}
		a.Log.Info("topics ready", "topics", topics, "partitions", c.Partitions, "replication_factor", c.ReplicationFactor)
	}
	a.Check("kafka", func(ctx context.Context) error { return kafkaclient.Ping(ctx, c) })
	p, err := kafkaclient.NewProducer(c, a.Log)
	if err != nil {
		return nil, err
	}
	a.OnStop("kafka producer", func(context.Context) error { return p.Close() })
	return p, nil
}

// Redis returns a client checked by /readyz and closed at shutdown.
func Redis(a *app.App, c redisclient.Config) redis.UniversalClient {
	rdb := redisclient.New(c)
	a.Check("redis", func(ctx context.Context) error { return redisclient.Ping(ctx, rdb) })
	a.OnStop("redis", func(context.Context) error { return rdb.Close() })
	return rdb
}

// ClickHouse creates the configured database if needed and returns a
// connection to it, checked by /readyz and closed at shutdown.
func ClickHouse(ctx context.Context, a *app.App, c chclient.Config) (driver.Conn, error) {
	admin, err := chclient.Open(c, "default")
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := waitFor(ctx, a, "clickhouse", func(ctx context.Context) error {
		return admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+c.Database)
	}); err != nil {
		return nil, fmt.Errorf("creating database %s: %w", c.Database, err)
	}
	conn, err := chclient.Open(c, c.Database)
	if err != nil {
		return nil, err
	}
	a.Check("clickhouse", func(ctx context.Context) error { return chclient.Ping(ctx, conn) })
	a.OnStop("clickhouse", func(context.Context) error { return conn.Close() })
	return conn, nil
}

// Stage joins the consumer group for topics and runs h on the shared stage
// runner as a component of a; its metrics are named after name.
func Stage(a *app.App, name string, c kafkaclient.Config, cc kafkaclient.ConsumerConfig, sink stage.Sink, h stage.Handler, topics ...string) error {
	consumer, err := kafkaclient.NewConsumer(c, cc, a.Log, topics...)
	if err != nil {
		return err
	}
	r := &stage.Runner{
		Name: name, Source: consumer, Sink: sink, Handler: h, Log: a.Log,
		Metrics: stage.NewMetrics(name, a.Registry), DrainTimeout: a.DrainTimeout(), Sequential: !cc.Pipeline,
	}
	a.Go(name+" stage", r.Run)
	// Registered after the producer's closer, so it runs before it: leave
	// the group first, then flush and close the producer.
	a.OnStop(name+" consumer", func(context.Context) error { return consumer.Close() })
	a.Log.Info("consuming", "topics", topics, "group", cc.GroupID)
	return nil
}

// waitFor retries op until it succeeds or a minute passes, so a service
// started together with its servers (make up, docker compose) waits for them
// instead of failing.
func waitFor(ctx context.Context, a *app.App, what string, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 15*time.Second)
		err := op(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		a.Log.Warn("waiting for "+what, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within a minute: %w", what, err)
		case <-time.After(delay):
		}
		if delay < 5*time.Second {
			delay *= 2
		}
	}
}

// Sources is the workspace configuration in force, kept current as a
// component of a: with o.Source "file", the YAML at path, checked for
// changes every interval (an empty path gives no workspaces); with
// "topic", the control plane's compacted topic, read to its end before
// Sources returns and followed afterwards (pkg/controlplane).
func Sources(ctx context.Context, a *app.App, kc kafkaclient.Config, o controlplane.Options, path string, interval time.Duration) (*sources.Live, error) {
	if o.FromTopic() {
		r, err := ConfigReader(ctx, a, kc, o)
		if err != nil {
			return nil, err
		}
		return r.Live(), nil
	}
	if path == "" {
		return sources.Static(&sources.Registry{}), nil
	}
	live, err := sources.NewLive(path)
	if err != nil {
		return nil, err
	}
	a.Go("sources watcher", func(ctx context.Context) error { return live.Watch(ctx, interval, a.Log) })
	return live, nil
}

// ConfigReader creates the config topic when configured to (waiting for
// Kafka like Kafka does), reads it to its end and follows it as a
// component of a.
func ConfigReader(ctx context.Context, a *app.App, kc kafkaclient.Config, o controlplane.Options) (*controlplane.Reader, error) {
	if kc.CreateTopics {
		if err := waitFor(ctx, a, "kafka", func(ctx context.Context) error { return kafkaclient.EnsureCompacted(ctx, kc, o.Topic) }); err != nil {
			return nil, fmt.Errorf("creating config topic: %w", err)
		}
	}
	kc.CreateTopics = false
	r, err := controlplane.Open(ctx, kc, o, a.Log, a.Registry)
	if err != nil {
		return nil, err
	}
	a.Go("config reader", r.Run)
	return r, nil
}
