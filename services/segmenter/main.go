// Command segmenter evaluates audience segments on every resolved event and profile change and produces enter/exit transitions to cdp.segments.membership and webhooks.
package main

import (
	"context"
	"flag"
	"os"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka    kafkaclient.Config
	consumer kafkaclient.ConsumerConfig
	topics   topics.Names
	redis    redisclient.Config
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "segmenter")
	s.consumer.RegisterFlags(fs, "segmenter")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
}

func (s *service) Validate() error {
	return config.ValidateAll(&s.kafka, &s.consumer, &s.topics, &s.redis)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	if _, err := deps.Kafka(ctx, a, s.kafka, s.topics.All()); err != nil {
		return err
	}
	deps.Redis(a, s.redis)
	// The processing core is not wired yet: this stage joins no consumer
	// group, so its input stays on Kafka until it does (nothing is consumed
	// and lost meanwhile).
	a.Log.Warn("processing core not built yet; not consuming")
	return nil
}

func main() { os.Exit(app.Main("segmenter", ":8083", &service{})) }
