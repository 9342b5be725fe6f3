// Command api serves the profile (customer 360) and control-plane APIs over
// gRPC and REST, reading live state from Redis and history from ClickHouse.
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
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka      kafkaclient.Config
	topics     topics.Names
	redis      redisclient.Config
	clickhouse chclient.Config
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "api")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
	s.clickhouse.RegisterFlags(fs)
}

func (s *service) Validate() error {
	return config.ValidateAll(&s.kafka, &s.topics, &s.redis, &s.clickhouse)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	if _, err := deps.Kafka(ctx, a, s.kafka, s.topics.All()); err != nil {
		return err
	}
	deps.Redis(a, s.redis)
	if _, err := deps.ClickHouse(ctx, a, s.clickhouse); err != nil {
		return err
	}
	return nil
}

func main() { os.Exit(app.Main("api", ":8090", &service{})) }
