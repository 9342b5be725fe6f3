// Command validator consumes cdp.events.raw, checks and cleans every event
// and produces it to cdp.events.valid, or to cdp.events.invalid with the
// reasons it was refused. Nothing is dropped without a trace. The rules live
// in pkg/validation; the per-source policies in the workspace configuration
// file (pkg/sources), reloaded when it changes.
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/dedup"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka           kafkaclient.Config
	consumer        kafkaclient.ConsumerConfig
	topics          topics.Names
	redis           redisclient.Config
	sourcesFile     string
	sourcesInterval time.Duration
	configFrom      controlplane.Options
	dedupWindow     time.Duration
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "validator")
	s.consumer.RegisterFlags(fs, "validator")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
	fs.StringVar(&s.sourcesFile, "sources.file", "", "workspace configuration (tracking plans, PII rules, consent policy); empty: every event is checked for format only")
	fs.DurationVar(&s.sourcesInterval, "sources.reload-interval", 2*time.Second, "how often the configuration file is checked for changes")
	s.configFrom.RegisterFlags(fs)
	fs.DurationVar(&s.dedupWindow, "dedup.window", 24*time.Hour, "how long a message id is remembered per source (at least 1h)")
}

func (s *service) Validate() error {
	if s.dedupWindow < time.Hour {
		return config.Field("dedup.window", "must be at least 1h, got %v", s.dedupWindow)
	}
	if s.sourcesFile != "" {
		if _, err := os.Stat(s.sourcesFile); err != nil {
			return config.Field("sources.file", "%v", err)
		}
	}
	return config.ValidateAll(&s.configFrom, &s.kafka, &s.consumer, &s.topics, &s.redis)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	live, err := deps.Sources(ctx, a, s.kafka, s.configFrom, s.sourcesFile, s.sourcesInterval)
	if err != nil {
		return err
	}
	p, err := deps.Kafka(ctx, a, s.kafka, s.topics.All())
	if err != nil {
		return err
	}
	rdb := deps.Redis(a, s.redis)
	h := newHandler(s.topics, live, dedup.New(rdb, s.dedupWindow), suppression.New(rdb), a.Registry)
	return deps.Stage(a, "validator", s.kafka, s.consumer, p, h, s.topics.Raw)
}

func main() { os.Exit(app.Main("validator", ":8081", &service{})) }
