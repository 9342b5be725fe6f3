// Command pipebench drives the whole pipeline through the collector at fixed
// rates and measures, per rate, how long an event takes from the moment it
// is posted to the collector until
//
//   - it is resolved to a profile (cdp.events.resolved),
//   - the segment transition it causes is on cdp.segments.membership,
//   - its row is queryable in ClickHouse (when -clickhouse is given),
//
// along with each stage's throughput (from the services' /metrics) and the
// segmenter's evaluations per second.
//
// The traffic is realistic shop clickstream (tools/clickstream) with probe
// events mixed in: every -probe-every'th event is a "Bench Toggle" track
// from one of a few hundred probe devices, and the benchmark workspace has a
// segment whose membership flips with every toggle, so each probe causes
// exactly one transition, whose cause id names the probe.
//
//	pipebench -url http://127.0.0.1:18080 -write-key K -brokers 127.0.0.1:19092 \
//	  -topic.resolved bench.cdp.events.resolved -topic.membership bench.cdp.segments.membership \
//	  -rates 1000,5000 -duration 30s -metrics collector=http://127.0.0.1:18080/metrics,...
//
// Progress goes to stderr once a second; the result to stdout as JSON.
// deploy/bench/pipeline.sh runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type Config struct {
	URL             string
	WriteKey        string
	Brokers         string
	ResolvedTopic   string
	MembershipTopic string
	ClickHouse      string // HTTP URL, empty: no row latency
	Database        string
	Rates           []int
	Duration        time.Duration
	Warmup          time.Duration
	Drain           time.Duration
	Batch           int
	Concurrency     int
	ProbeEvery      int
	ProbeDevices    int
	Devices         int
	Metrics         map[string]string // service → /metrics URL
	// CPU names the processes whose CPU time is reported per step
	// (process → pid); pipebench itself is always counted as "pipebench".
	CPU   map[string]int
	Quiet bool

	rates, metrics, cpu string // as given, parsed by Validate
}

func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the collector")
	fs.StringVar(&c.WriteKey, "write-key", "", "write key of the benchmark source")
	fs.StringVar(&c.Brokers, "brokers", "127.0.0.1:19092", "Kafka bootstrap brokers")
	fs.StringVar(&c.ResolvedTopic, "topic.resolved", "cdp.events.resolved", "topic of resolved events")
	fs.StringVar(&c.MembershipTopic, "topic.membership", "cdp.segments.membership", "topic of segment transitions")
	fs.StringVar(&c.ClickHouse, "clickhouse", "", "ClickHouse HTTP URL (e.g. http://127.0.0.1:18123); empty skips row latency")
	fs.StringVar(&c.Database, "clickhouse.database", "firstparty", "database of the events table")
	fs.StringVar(&c.rates, "rates", "1000,5000", "events per second to drive, one step each, comma-separated")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long each rate is driven")
	fs.DurationVar(&c.Warmup, "warmup", 10*time.Second, "how long the first rate is driven before the steps, uncounted (the devices are seen a first time; the same ones browse on through every step)")
	fs.DurationVar(&c.Drain, "drain", 15*time.Second, "longest wait after a step for its last probes")
	fs.IntVar(&c.Batch, "batch", 10, "events per request (/v1/batch)")
	fs.IntVar(&c.Concurrency, "concurrency", 32, "connections")
	fs.IntVar(&c.ProbeEvery, "probe-every", 20, "one event in this many is a probe")
	fs.IntVar(&c.ProbeDevices, "probe-devices", 500, "distinct probe devices (profiles whose membership flips)")
	fs.IntVar(&c.Devices, "devices", 20000, "simulated shop devices")
	fs.StringVar(&c.metrics, "metrics", "", "service=URL of /metrics, comma-separated, for per-stage throughput")
	fs.StringVar(&c.cpu, "cpu", "", "process=pid, comma-separated: processes whose CPU use (cores) is reported per step, e.g. kafka=123,redis=456")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress on stderr")
}

func (c *Config) Validate() error {
	c.Rates, c.Metrics, c.CPU = nil, map[string]string{}, map[string]int{}
	for _, r := range strings.Split(c.rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return fmt.Errorf("-rates: %q is not a positive number of events per second", r)
		}
		c.Rates = append(c.Rates, n)
	}
	for _, kv := range strings.Split(c.metrics, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(v, "http") {
			return fmt.Errorf("-metrics: %q is not service=http://…/metrics", kv)
		}
		c.Metrics[k] = v
	}
	for _, kv := range strings.Split(c.cpu, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || pid <= 0 {
			return fmt.Errorf("-cpu: %q is not process=pid", kv)
		}
		c.CPU[k] = pid
	}
	switch {
	case c.WriteKey == "":
		return fmt.Errorf("-write-key is required")
	case c.Batch < 1 || c.Batch > 500:
		return fmt.Errorf("-batch must be 1..500")
	case c.Concurrency < 1:
		return fmt.Errorf("-concurrency must be at least 1")
	case c.ProbeEvery < 1 || c.ProbeDevices < 1:
		return fmt.Errorf("-probe-every and -probe-devices must be at least 1")
	case c.Duration < time.Second:
		return fmt.Errorf("-duration must be at least 1s")
	case c.Warmup < time.Second:
		return fmt.Errorf("-warmup must be at least 1s (consumers join their groups in it)")
	}
	return nil
}

func main() {
	var cfg Config
	fs := flag.NewFlagSet("pipebench", flag.ExitOnError)
	cfg.RegisterFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
}
