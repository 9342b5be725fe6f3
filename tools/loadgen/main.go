// Command loadgen drives a collector with realistic clickstream over
// Segment's HTTP Tracking API and reports what it sustained: accepted
// events and requests per second, request latency percentiles (HDR
// histogram) and answers by status. It always stops by itself: after
// -duration, or after -events (still bounded by -duration's default cap).
//
//	loadgen -url http://127.0.0.1:8080 -write-key KEY -batch 20 -concurrency 64 -duration 20s
//
// Progress goes to stderr once a second; the result to stdout (-json for
// machines). deploy/bench/collector.sh uses it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Config is the load generator's configuration.
type Config struct {
	URL         string
	WriteKey    string
	Batch       int
	Concurrency int
	Duration    time.Duration
	Events      int64
	Rate        float64
	Devices     int
	Seed        uint64
	Timeout     time.Duration
	JSON        bool
	Quiet       bool
}

// maxRun caps a run given only -events, so a stalled collector cannot keep
// the generator alive forever.
const maxRun = 10 * time.Minute

func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the collector")
	fs.StringVar(&c.WriteKey, "write-key", "", "write key (sent as the Basic-auth user name)")
	fs.IntVar(&c.Batch, "batch", 1, "events per request: 1 posts to /v1/track, /v1/page or /v1/identify; more posts to /v1/batch")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "connections, each sending one request at a time")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send (with -events and no -duration: a cap of "+maxRun.String()+")")
	fs.Int64Var(&c.Events, "events", 0, "stop after sending this many events (0: send until -duration)")
	fs.Float64Var(&c.Rate, "rate", 0, "target events per second over all connections (0: as fast as the collector answers)")
	fs.IntVar(&c.Devices, "devices", 20000, "simulated devices (anonymous ids), spread over the connections")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "longest wait for one answer; longer counts as a connection error")
	fs.BoolVar(&c.JSON, "json", false, "print the result as JSON")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress lines on stderr")
}

func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("-url %q: want http(s)://host:port", c.URL)
	case c.WriteKey == "":
		return errors.New("-write-key is required")
	case c.Batch < 1 || c.Batch > 2500:
		return fmt.Errorf("-batch %d: must be 1..2500 (Segment's batch limit)", c.Batch)
	case c.Concurrency < 1:
		return fmt.Errorf("-concurrency %d: must be at least 1", c.Concurrency)
	case c.Duration <= 0:
		return fmt.Errorf("-duration %v: must be positive", c.Duration)
	case c.Events < 0 || c.Rate < 0:
		return errors.New("-events and -rate must not be negative")
	case c.Devices < 1:
		return fmt.Errorf("-devices %d: must be at least 1", c.Devices)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout %v: must be positive", c.Timeout)
	}
	return nil
}

func main() {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	durationSet := false
	fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
	if cfg.Events > 0 && !durationSet {
		cfg.Duration = maxRun
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var progress io.Writer // nil: no progress
	if !cfg.Quiet {
		progress = os.Stderr
	}
	res := run(ctx, cfg, progress)
	if cfg.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		res.writeText(os.Stdout)
	}
	if res.Requests == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: no request was accepted")
		os.Exit(1)
	}
}
