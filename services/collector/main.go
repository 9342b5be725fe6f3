// Command collector accepts events over Segment's HTTP Tracking API and
// produces them to cdp.events.raw, answering 200 only after Kafka
// acknowledged them (acks=all). It is stateless and scales horizontally.
package main

import (
	"context"
	"flag"
	"os"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka  kafkaclient.Config
	topics topics.Names
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "collector")
	s.topics.RegisterFlags(fs)
}

func (s *service) Validate() error { return config.ValidateAll(&s.kafka, &s.topics) }

func (s *service) Start(ctx context.Context, a *app.App) error {
	_, err := deps.Kafka(ctx, a, s.kafka, s.topics.All())
	return err
}

func main() { os.Exit(app.Main("collector", ":8080", &service{})) }
