// Command segmenter evaluates audience segments on every resolved event,
// profile change and due timer, and produces enter/exit transitions to
// cdp.segments.membership (and on to webhooks). Segment definitions come
// from the workspace configuration (pkg/sources), reloaded when it changes;
// per-profile aggregates, memberships and timers live in Redis
// (pkg/segstate); the language is pkg/segments.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/webhook"
)

type service struct {
	kafka           kafkaclient.Config
	consumer        kafkaclient.ConsumerConfig
	topics          topics.Names
	redis           redisclient.Config
	sourcesFile     string
	sourcesInterval time.Duration
	configFrom      controlplane.Options
	timerPoll       time.Duration
	lease           time.Duration
	backfillEvery   time.Duration
	configWait      time.Duration
	webhooks        bool
	webhookPrivate  bool
	webhookConc     int
	shards          int
	profileCache    int

	// now is the clock (tests move it).
	now func() time.Time
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "segmenter")
	s.consumer.RegisterFlags(fs, "segmenter")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
	fs.StringVar(&s.sourcesFile, "sources.file", "", "workspace configuration holding the segment definitions; empty: no segments")
	fs.DurationVar(&s.sourcesInterval, "sources.reload-interval", 2*time.Second, "how often the configuration file is checked for changes")
	s.configFrom.RegisterFlags(fs)
	fs.DurationVar(&s.timerPoll, "timers.poll", 100*time.Millisecond, "how often due timers are looked for (the most a time-driven transition can be late)")
	fs.DurationVar(&s.lease, "timers.lease", 30*time.Second, "how long a claimed timer or backfill stays with this instance before another may take it")
	fs.DurationVar(&s.backfillEvery, "backfill.interval", 2*time.Second, "how often new segments are looked for, to backfill their membership")
	fs.DurationVar(&s.configWait, "backfill.config-wait", 30*time.Second, "longest a backfill tick waits for this instance's configuration to have the segment version it was sent for (another instance sent it)")
	fs.BoolVar(&s.webhooks, "webhooks.enabled", true, "deliver transitions to the workspaces' webhook destinations (consumer group <group>-webhooks)")
	fs.IntVar(&s.webhookConc, "webhooks.concurrency", 32, "transitions delivered at once")
	fs.IntVar(&s.shards, "handle.concurrency", 2, "parts of a batch whose profiles are loaded, evaluated and written at once (their Redis round trips overlap with each other's evaluation)")
	fs.IntVar(&s.profileCache, "profiles.cache", 100000, "profiles whose traits and identities are kept between batches: an event the stitcher marks unchanged then reads only the profile's own hash (0: read them every time)")
	fs.BoolVar(&s.webhookPrivate, "webhooks.allow-private", false, "deliver to destinations whose host name resolves to a loopback, private or link-local address (a URL naming such an address literally is delivered anyway: only an operator can save one)")
}

func (s *service) Validate() error {
	if s.sourcesFile != "" {
		if _, err := os.Stat(s.sourcesFile); err != nil {
			return config.Field("sources.file", "%v", err)
		}
	}
	if s.timerPoll < time.Millisecond || s.timerPoll > time.Minute {
		return config.Field("timers.poll", "must be between 1ms and 1m, got %v", s.timerPoll)
	}
	if s.lease < time.Second {
		return config.Field("timers.lease", "must be at least 1s, got %v", s.lease)
	}
	if s.shards < 1 || s.shards > 64 {
		return config.Field("handle.concurrency", "must be 1..64, got %d", s.shards)
	}
	if s.profileCache < 0 {
		return config.Field("profiles.cache", "must not be negative, got %d", s.profileCache)
	}
	if s.webhookConc < 1 {
		return config.Field("webhooks.concurrency", "must be at least 1")
	}
	if s.configWait < 0 {
		return config.Field("backfill.config-wait", "must not be negative, got %v", s.configWait)
	}
	if s.backfillEvery < 10*time.Millisecond {
		return config.Field("backfill.interval", "must be at least 10ms, got %v", s.backfillEvery)
	}
	return config.ValidateAll(&s.configFrom, &s.kafka, &s.consumer, &s.topics, &s.redis)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	if s.now == nil {
		s.now = time.Now
	}
	live, err := deps.Sources(ctx, a, s.kafka, s.configFrom, s.sourcesFile, s.sourcesInterval)
	if err != nil {
		return err
	}
	p, err := deps.Kafka(ctx, a, s.kafka, s.topics.All())
	if err != nil {
		return err
	}
	rdb := deps.Redis(a, s.redis)
	store, graph, m := segstate.New(rdb), identity.New(rdb, identity.DefaultConfig()), newMetrics(a.Registry)
	h := &handler{topics: s.topics, reg: live.Current, graph: graph, store: store, shards: s.shards, configWait: s.configWait, now: s.now, log: a.Log, metrics: m}
	if s.profileCache > 0 {
		h.profiles = newProfileCache(s.profileCache)
		pc := h.profiles
		a.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "firstparty_segmenter_profile_cache_hits_total", Help: "Profiles whose traits and identities came from memory (their events left them unchanged).",
		}, func() float64 { n, _ := pc.stats(); return float64(n) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "firstparty_segmenter_profile_cache_misses_total", Help: "Profiles looked up in memory and read from Redis after all (not kept, or their events did not follow the kept version).",
		}, func() float64 { _, n := pc.stats(); return float64(n) }))
	}
	host, _ := os.Hostname()
	sch := &scheduler{store: store, graph: graph, sink: p, topics: s.topics, reg: live.Current, now: s.now, log: a.Log, metrics: m,
		owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8]), poll: s.timerPoll, lease: s.lease}
	a.Go("timers", sch.runTimers)
	a.Go("backfills", func(ctx context.Context) error { return sch.runBackfills(ctx, s.backfillEvery) })
	if s.webhooks {
		deliverer := webhook.NewDeliverer(a.Log, a.Registry)
		deliverer.Policy.AllowPrivate = s.webhookPrivate
		wh := &webhooks{topics: s.topics, reg: live.Current, deliverer: deliverer, concurrency: s.webhookConc, now: s.now}
		cc := s.consumer
		cc.GroupID += "-webhooks"
		if err := deps.Stage(a, "webhooks", s.kafka, cc, p, wh, s.topics.Membership); err != nil {
			return err
		}
	}
	return deps.Stage(a, "segmenter", s.kafka, s.consumer, p, h, s.topics.Resolved, s.topics.Profiles, s.topics.Timers)
}

func main() { os.Exit(app.Main("segmenter", ":8083", &service{})) }
