package main

import (
	"flag"
	"strings"
	"testing"

	"github.com/firstparty/firstparty/pkg/config"
)

func parseConfig(t *testing.T, env map[string]string) (*service, error) {
	t.Helper()
	s := &service{}
	fs := flag.NewFlagSet("loader", flag.ContinueOnError)
	s.RegisterFlags(fs)
	if err := config.Parse(fs, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	return s, s.Validate()
}

func TestConfig(t *testing.T) {
	s, err := parseConfig(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.consumer.BatchSize != 10000 || s.consumer.BatchWait.String() != "1s" || s.consumer.GroupID != "firstparty-loader" || s.cluster != "" {
		t.Errorf("defaults: %+v, cluster %q", s.consumer, s.cluster)
	}
	s, err = parseConfig(t, map[string]string{"FP_CONSUMER_BATCH_SIZE": "200", "FP_CLICKHOUSE_CLUSTER": "cdp_main"})
	if err != nil || s.consumer.BatchSize != 200 || s.cluster != "cdp_main" {
		t.Errorf("environment: %+v %q %v", s.consumer, s.cluster, err)
	}
	if _, err := parseConfig(t, map[string]string{"FP_CLICKHOUSE_CLUSTER": "main; DROP"}); err == nil || !strings.Contains(err.Error(), "-clickhouse.cluster (FP_CLICKHOUSE_CLUSTER)") {
		t.Errorf("bad cluster name: %v", err)
	}
}
