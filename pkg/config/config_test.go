package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParsePrecedence(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		brokers string
		timeout time.Duration
	}{
		{name: "defaults", brokers: "localhost:9092", timeout: time.Second},
		{name: "env overrides default", env: map[string]string{"FP_KAFKA_BROKERS": "a:1, b:2", "FP_DIAL_TIMEOUT": "3s"}, brokers: "a:1,b:2", timeout: 3 * time.Second},
		{name: "flag overrides env", env: map[string]string{"FP_KAFKA_BROKERS": "a:1"}, args: []string{"-kafka.brokers=c:3"}, brokers: "c:3", timeout: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			brokers := List{"localhost:9092"}
			fs.Var(&brokers, "kafka.brokers", "")
			timeout := fs.Duration("dial-timeout", time.Second, "")
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			if err := Parse(fs, tt.args, lookup); err != nil {
				t.Fatal(err)
			}
			if got := brokers.String(); got != tt.brokers {
				t.Errorf("brokers = %q, want %q", got, tt.brokers)
			}
			if *timeout != tt.timeout {
				t.Errorf("timeout = %v, want %v", *timeout, tt.timeout)
			}
		})
	}
}

func TestParseBadEnvNamesVariable(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Duration("drain-timeout", time.Second, "")
	err := Parse(fs, nil, func(k string) (string, bool) {
		if k == "FP_DRAIN_TIMEOUT" {
			return "soon", true
		}
		return "", false
	})
	if err == nil || !strings.Contains(err.Error(), "FP_DRAIN_TIMEOUT") {
		t.Fatalf("want an error naming FP_DRAIN_TIMEOUT, got %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"kafka.brokers":       "FP_KAFKA_BROKERS",
		"http-addr":           "FP_HTTP_ADDR",
		"topic.events-raw":    "FP_TOPIC_EVENTS_RAW",
		"clickhouse.database": "FP_CLICKHOUSE_DATABASE",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSetDefault(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"the new default", nil, nil, 2000},
		{"the environment overrides it", map[string]string{"FP_BATCH_SIZE": "7"}, nil, 7},
		{"a flag overrides both", map[string]string{"FP_BATCH_SIZE": "7"}, []string{"-batch-size=9"}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			n := fs.Int("batch-size", 500, "")
			SetDefault(fs, "batch-size", "2000")
			if got := fs.Lookup("batch-size").DefValue; got != "2000" {
				t.Fatalf("DefValue = %q (what -h shows)", got)
			}
			if err := Parse(fs, tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }); err != nil {
				t.Fatal(err)
			}
			if *n != tc.want {
				t.Errorf("batch-size = %d, want %d", *n, tc.want)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("SetDefault of an unknown flag did not panic")
		}
	}()
	SetDefault(flag.NewFlagSet("y", flag.ContinueOnError), "nope", "1")
}
