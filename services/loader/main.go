// Command loader writes every resolved event, rejection, profile change and
// segment transition to ClickHouse, committing Kafka offsets only after
// ClickHouse acknowledged the insert.
package main

import (
	"context"
	"flag"
	"os"

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
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "loader")
	s.consumer.RegisterFlags(fs, "loader")
	s.topics.RegisterFlags(fs)
	s.clickhouse.RegisterFlags(fs)
}

func (s *service) Validate() error {
	return config.ValidateAll(&s.kafka, &s.consumer, &s.topics, &s.clickhouse)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	if _, err := deps.Kafka(ctx, a, s.kafka, s.topics.All()); err != nil {
		return err
	}
	if _, err := deps.ClickHouse(ctx, a, s.clickhouse); err != nil {
		return err
	}
	// The schema and the insert path are not built yet: the loader joins no
	// consumer group, so its inputs stay on Kafka until it does.
	a.Log.Warn("loading not built yet; not consuming")
	return nil
}

func main() { os.Exit(app.Main("loader", ":8084", &service{})) }
