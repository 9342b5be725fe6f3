package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is everything the demo needs to reach the local stack. Each
// field comes from its flag, else its FP_* environment variable, else
// .local/demo.env (written by make up), else a default for the local stack.
type Config struct {
	CollectorURL   string
	WriteKey       string
	APIURL         string
	AdminKey       string
	Brokers        string
	ClickHouseHTTP string
	Database       string
	Workspace      string
	// Metrics maps each stage to its Prometheus endpoint, in pipeline order.
	Metrics []Endpoint

	Rate     int // events per second
	Batch    int // events per /v1/batch request
	Devices  int // simulated devices browsing at once
	Duration time.Duration
	Seed     uint64
	// TriggerWithin is how soon after the start the first segment trigger
	// must arrive.
	TriggerWithin time.Duration
	// Settle bounds the wait, after sending stops, for the pipeline to
	// drain and ClickHouse to hold the events.
	Settle time.Duration
}

// Endpoint is one stage's /metrics.
type Endpoint struct{ Stage, URL string }

// defaultMetrics are the services' ports under make up.
const defaultMetrics = "collector=http://127.0.0.1:8080/metrics,validator=http://127.0.0.1:8081/metrics,stitcher=http://127.0.0.1:8082/metrics,segmenter=http://127.0.0.1:8083/metrics,loader=http://127.0.0.1:8084/metrics"

// env lists the variables demo.env provides and their fallbacks.
var envDefaults = map[string]string{
	"FP_COLLECTOR_URL":   "http://127.0.0.1:8080",
	"FP_API_URL":         "http://127.0.0.1:8090",
	"FP_KAFKA_BROKERS":   "127.0.0.1:19092",
	"FP_CLICKHOUSE_HTTP": "http://127.0.0.1:18123",
	"FP_DEMO_SECONDS":    "60",
}

// parseEnvFile reads KEY=VALUE lines (comments, blanks and an optional
// `export ` skipped; single or double quotes around a value removed), the
// shape deploy/local/stack.sh writes.
func parseEnvFile(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want KEY=VALUE, got %q", n, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// findEnvFile looks for .local/demo.env in dir and its parents (make demo
// runs the tool from tools/).
func findEnvFile(dir string) string {
	for {
		p := filepath.Join(dir, ".local", "demo.env")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// lookup answers a variable from the environment, then the file, then the
// defaults.
func lookup(env func(string) (string, bool), file map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := env(k); ok && v != "" {
			return v
		}
		if v, ok := file[k]; ok && v != "" {
			return v
		}
		return envDefaults[k]
	}
}

// parseConfig reads flags (args) over the variables get answers.
func parseConfig(args []string, get func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&c.CollectorURL, "collector", get("FP_COLLECTOR_URL"), "collector base URL (FP_COLLECTOR_URL)")
	fs.StringVar(&c.WriteKey, "write-key", get("FP_WRITE_KEY"), "write key of the demo source (FP_WRITE_KEY)")
	fs.StringVar(&c.APIURL, "api", get("FP_API_URL"), "profile API base URL (FP_API_URL)")
	fs.StringVar(&c.AdminKey, "admin-key", get("FP_ADMIN_KEY"), "admin key of the demo workspace (FP_ADMIN_KEY)")
	fs.StringVar(&c.Brokers, "kafka.brokers", get("FP_KAFKA_BROKERS"), "Kafka bootstrap brokers, comma-separated (FP_KAFKA_BROKERS)")
	fs.StringVar(&c.ClickHouseHTTP, "clickhouse.http", get("FP_CLICKHOUSE_HTTP"), "ClickHouse HTTP interface (FP_CLICKHOUSE_HTTP)")
	fs.StringVar(&c.Database, "clickhouse.database", "firstparty", "ClickHouse database the loader writes")
	fs.StringVar(&c.Workspace, "workspace", "demo", "workspace of the write key")
	metrics := fs.String("metrics", defaultMetrics, "stage=URL of each service's Prometheus endpoint, comma-separated, in pipeline order")
	fs.IntVar(&c.Rate, "rate", 200, "events per second sent to the collector")
	fs.IntVar(&c.Batch, "batch", 20, "events per /v1/batch request")
	fs.IntVar(&c.Devices, "devices", 300, "simulated devices browsing at once")
	seconds := fs.Int("seconds", 0, "how long to send, in seconds (FP_DEMO_SECONDS, default 60)")
	fs.Uint64Var(&c.Seed, "seed", uint64(time.Now().UnixNano()), "seed of the simulated shop (the same seed plays the same shop)")
	fs.DurationVar(&c.TriggerWithin, "trigger-within", 15*time.Second, "fail unless a segment trigger arrives this soon after the start")
	fs.DurationVar(&c.Settle, "settle", 30*time.Second, "after sending, wait at most this long for the pipeline to drain")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *seconds == 0 {
		n, err := strconv.Atoi(get("FP_DEMO_SECONDS"))
		if err != nil {
			return c, fmt.Errorf("FP_DEMO_SECONDS: want a whole number of seconds, got %q", get("FP_DEMO_SECONDS"))
		}
		*seconds = n
	}
	c.Duration = time.Duration(*seconds) * time.Second
	eps, err := parseEndpoints(*metrics)
	if err != nil {
		return c, fmt.Errorf("-metrics: %w", err)
	}
	c.Metrics = eps
	return c, c.Validate()
}

func parseEndpoints(s string) ([]Endpoint, error) {
	var out []Endpoint
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		stage, u, ok := strings.Cut(part, "=")
		if !ok || stage == "" || u == "" {
			return nil, fmt.Errorf("want stage=URL, got %q", part)
		}
		out = append(out, Endpoint{stage, u})
	}
	return out, nil
}

// Validate names the first field that cannot work, and how to fix it.
func (c Config) Validate() error {
	var errs []error
	for _, u := range []struct{ flag, v string }{{"-collector", c.CollectorURL}, {"-clickhouse.http", c.ClickHouseHTTP}} {
		if p, err := url.Parse(u.v); err != nil || p.Scheme == "" || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s: want an http URL, got %q", u.flag, u.v))
		}
	}
	if c.WriteKey == "" {
		errs = append(errs, errors.New("-write-key (FP_WRITE_KEY) is empty: run make up, which writes .local/demo.env"))
	}
	if c.Brokers == "" {
		errs = append(errs, errors.New("-kafka.brokers (FP_KAFKA_BROKERS) is empty"))
	}
	if c.Rate < 1 || c.Batch < 1 || c.Devices < 1 {
		errs = append(errs, fmt.Errorf("-rate, -batch and -devices must be at least 1, got %d, %d, %d", c.Rate, c.Batch, c.Devices))
	}
	if c.Duration < time.Second {
		errs = append(errs, fmt.Errorf("-seconds (FP_DEMO_SECONDS) must be at least 1, got %v", c.Duration))
	}
	if c.TriggerWithin <= 0 || c.Settle < 0 {
		errs = append(errs, errors.New("-trigger-within must be positive and -settle not negative"))
	}
	if len(c.Metrics) == 0 {
		errs = append(errs, errors.New("-metrics lists no endpoint"))
	}
	return errors.Join(errs...)
}

// String shows where the demo is pointed, keys left out.
func (c Config) String() string {
	return fmt.Sprintf("collector %s, kafka %s, clickhouse %s (db %s), workspace %s; %d events/s in batches of %d from %d devices for %v",
		c.CollectorURL, c.Brokers, c.ClickHouseHTTP, c.Database, c.Workspace, c.Rate, c.Batch, c.Devices, c.Duration)
}
