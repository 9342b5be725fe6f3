// Command stitcher resolves every valid event to one person's profile and
// produces it to cdp.events.resolved (keyed by profile id), with the
// identity merges and trait changes it caused on cdp.profiles.changes. The
// identity graph and live profiles live in Redis (pkg/identity).
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka     kafkaclient.Config
	consumer  kafkaclient.ConsumerConfig
	topics    topics.Names
	redis     redisclient.Config
	userIDs   int
	otherIDs  int
	markerTTL time.Duration

	sourcesFile     string
	sourcesInterval time.Duration
	configFrom      controlplane.Options
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "stitcher")
	s.consumer.RegisterFlags(fs, "stitcher")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
	fs.IntVar(&s.userIDs, "identity.max-user-ids", 1, "user_ids one profile may hold (merge protection)")
	fs.IntVar(&s.otherIDs, "identity.max-per-type", 5, "identifiers of any other type one profile may hold")
	fs.StringVar(&s.sourcesFile, "sources.file", "", "workspace configuration; a workspace's identity block overrides the -identity.* defaults")
	fs.DurationVar(&s.sourcesInterval, "sources.reload-interval", 2*time.Second, "how often the configuration file is checked for changes")
	s.configFrom.RegisterFlags(fs)
	fs.DurationVar(&s.markerTTL, "identity.redelivery-window", 7*24*time.Hour, "how long a processed message id is remembered, so a redelivery is a no-op")
}

func (s *service) Validate() error {
	if s.userIDs < 1 {
		return config.Field("identity.max-user-ids", "must be at least 1")
	}
	if s.otherIDs < 1 {
		return config.Field("identity.max-per-type", "must be at least 1")
	}
	if s.sourcesFile != "" {
		if _, err := os.Stat(s.sourcesFile); err != nil {
			return config.Field("sources.file", "%v", err)
		}
	}
	if s.markerTTL < time.Hour {
		return config.Field("identity.redelivery-window", "must be at least 1h")
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
	cfg := identity.Config{Limits: map[string]int{"user_id": s.userIDs}, DefaultLimit: s.otherIDs, MarkerTTL: s.markerTTL}
	h := newHandler(s.topics, identity.New(rdb, cfg), a.Registry)
	h.workspace = func(ws string) *identity.Config { return live.Current().Identity(ws) }
	return deps.Stage(a, "stitcher", s.kafka, s.consumer, p, h, s.topics.Valid)
}

func main() { os.Exit(app.Main("stitcher", ":8082", &service{})) }
