// Command collector accepts events over Segment's HTTP Tracking API (and a
// gRPC equivalent) and produces them to cdp.events.raw, answering 200 only
// after Kafka acknowledged them (acks=all). It is stateless and scales
// horizontally behind any load balancer.
package main

import (
	"context"
	"flag"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/segmentapi"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka  kafkaclient.Config
	topics topics.Names
	cfg    Config
}

// Config is the collector's own configuration.
type Config struct {
	SourcesFile     string
	SourcesInterval time.Duration
	// ConfigFrom: the file above, or the control plane's topic.
	ConfigFrom      controlplane.Options
	GRPCAddr        string
	Limits          segmentapi.Limits
	ProduceTimeout  time.Duration
	MaxInflightMB   int
	RateLimit       float64
	RateBurst       int
	CORSOrigins     config.List
	CORSCredentials bool
	TrustedProxies  config.List
	trusted         []netip.Prefix
}

func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := segmentapi.DefaultLimits()
	fs.StringVar(&c.SourcesFile, "sources.file", "", "YAML file of workspaces, sources and write keys (reloaded when it changes)")
	fs.DurationVar(&c.SourcesInterval, "sources.reload-interval", 2*time.Second, "how often the sources file is checked for changes")
	c.ConfigFrom.RegisterFlags(fs)
	fs.StringVar(&c.GRPCAddr, "grpc-addr", ":8085", "listen address of the gRPC ingest service (empty: off)")
	fs.IntVar(&c.Limits.MaxEventBytes, "limits.event-bytes", d.MaxEventBytes, "largest event (bytes of JSON)")
	fs.IntVar(&c.Limits.MaxBatchBytes, "limits.batch-bytes", d.MaxBatchBytes, "largest batch request after decompression")
	fs.IntVar(&c.Limits.MaxBatchEvents, "limits.batch-events", d.MaxBatchEvents, "most events in one batch")
	fs.IntVar(&c.Limits.MaxDepth, "limits.depth", d.MaxDepth, "deepest nesting of JSON objects and arrays")
	fs.DurationVar(&c.ProduceTimeout, "produce-timeout", 10*time.Second, "longest wait for Kafka to acknowledge a request's events before answering 503")
	fs.IntVar(&c.MaxInflightMB, "max-inflight-mb", 256, "request bytes held at once; beyond it requests get 503 (bounds memory)")
	fs.Float64Var(&c.RateLimit, "ratelimit.events-per-second", 20000, "default per-source event rate (a source's rate_limit overrides it)")
	fs.IntVar(&c.RateBurst, "ratelimit.burst", 40000, "default per-source burst")
	c.CORSOrigins = config.List{"*"}
	fs.Var(&c.CORSOrigins, "cors.origins", `origins browsers may send from ("*" for any, or a comma-separated list)`)
	fs.BoolVar(&c.CORSCredentials, "cors.credentials", false, "answer Access-Control-Allow-Credentials (not allowed with origin *)")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "CIDRs of proxies whose X-Forwarded-For is believed (comma-separated); empty: the connection's address is the client's")
}

func (c *Config) Validate() error {
	if err := c.ConfigFrom.Validate(); err != nil {
		return err
	}
	if !c.ConfigFrom.FromTopic() {
		if c.SourcesFile == "" {
			return config.Field("sources.file", "required: a YAML file of workspaces, sources and write keys (see pkg/sources), or -config.source=topic")
		}
		if _, err := os.Stat(c.SourcesFile); err != nil {
			return config.Field("sources.file", "%v", err)
		}
	}
	if c.GRPCAddr != "" {
		if _, _, err := net.SplitHostPort(c.GRPCAddr); err != nil {
			return config.Field("grpc-addr", "%q is not host:port", c.GRPCAddr)
		}
	}
	switch {
	case c.Limits.MaxEventBytes < 1024:
		return config.Field("limits.event-bytes", "must be at least 1024")
	case c.Limits.MaxBatchBytes < c.Limits.MaxEventBytes:
		return config.Field("limits.batch-bytes", "must be at least limits.event-bytes")
	case c.Limits.MaxBatchEvents < 1:
		return config.Field("limits.batch-events", "must be at least 1")
	case c.Limits.MaxDepth < 4 || c.Limits.MaxDepth > 1000:
		return config.Field("limits.depth", "must be 4..1000")
	case c.ProduceTimeout <= 0:
		return config.Field("produce-timeout", "must be positive")
	case c.MaxInflightMB < 1:
		return config.Field("max-inflight-mb", "must be at least 1")
	case c.RateLimit <= 0 || c.RateBurst < 1:
		return config.Field("ratelimit.events-per-second", "rate and burst must be positive")
	}
	for _, o := range c.CORSOrigins {
		if o == "*" && c.CORSCredentials {
			return config.Field("cors.credentials", "browsers refuse credentials with origin *: list the origins in -cors.origins")
		}
	}
	c.trusted = nil
	for _, p := range c.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return config.Field("trusted-proxies", "%q is not a CIDR or address", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.trusted = append(c.trusted, pfx)
	}
	return nil
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "collector")
	// kafka-go allocates room for batch-size messages (~150 B each,
	// zeroed) for every batch it starts, and the collector starts a few
	// per request, each holding a handful of events: 200 instead of 1,000
	// cut the garbage per 10-event write from ~500 to ~113 KB
	// (BenchmarkProduceSmallWrites) and the collector's CPU in the
	// pipeline benchmark from 0.21/0.26 to 0.18/0.22 cores at 2,000/3,000
	// events/s. A batch reaching 200 messages within -kafka.batch-timeout
	// is simply sent sooner.
	config.SetDefault(fs, "kafka.batch-size", "200")
	// Requests arrive one by one and each spreads its events over the
	// partitions, so the writer sends a produce request per partition per
	// batch-timeout window, and the validator fetches each: at 6
	// partitions most of Kafka's CPU. 20 ms windows instead of 1 ms (the
	// stages' default, whose writes come a batch at once) took Kafka from
	// 0.38-0.40 to 0.31-0.32 cores at 2,000 events/s in the pipeline
	// benchmark, for about 10 ms more until a request is acknowledged.
	config.SetDefault(fs, "kafka.batch-timeout", "20ms")
	s.topics.RegisterFlags(fs)
	s.cfg.RegisterFlags(fs)
}

func (s *service) Validate() error { return config.ValidateAll(&s.kafka, &s.topics, &s.cfg) }

func (s *service) Start(ctx context.Context, a *app.App) error {
	live, err := deps.Sources(ctx, a, s.kafka, s.cfg.ConfigFrom, s.cfg.SourcesFile, s.cfg.SourcesInterval)
	if err != nil {
		return err
	}
	p, err := deps.Kafka(ctx, a, s.kafka, s.topics.All())
	if err != nil {
		return err
	}
	m := newMetrics(a.Registry)
	live.OnReload = func(err error) {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		m.reloads.WithLabelValues(outcome).Inc()
	}
	in := newIngestor(s.cfg, live, p, s.topics, m, a.Log)
	newHTTPHandler(in, s.cfg).register(a.Mux)
	if s.cfg.GRPCAddr != "" {
		a.GoServe("grpc ingest", s.cfg.GRPCAddr, newGRPCServer(in, s.cfg))
	}
	a.Log.Info("collector ready", "sources", live.Current().Sources(), "raw_topic", s.topics.Raw)
	return nil
}

func main() { os.Exit(app.Main("collector", ":8080", &service{})) }
