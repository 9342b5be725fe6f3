package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseEnvFile(t *testing.T) {
	got, err := parseEnvFile(strings.NewReader(`# Written by deploy/local/stack.sh start
FP_COLLECTOR_URL=http://127.0.0.1:8080

export FP_WRITE_KEY="fpw_abc"
FP_ADMIN_KEY='fpa_x=y'
FP_EMPTY=
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"FP_COLLECTOR_URL": "http://127.0.0.1:8080", "FP_WRITE_KEY": "fpw_abc", "FP_ADMIN_KEY": "fpa_x=y", "FP_EMPTY": ""}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := parseEnvFile(strings.NewReader("FP_A=1\nnot a variable\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad line: %v, want an error naming line 2", err)
	}
}

func TestConfigPrecedence(t *testing.T) {
	file := map[string]string{"FP_WRITE_KEY": "from-file", "FP_COLLECTOR_URL": "http://file:8080", "FP_DEMO_SECONDS": "30"}
	env := map[string]string{"FP_COLLECTOR_URL": "http://env:8080"}
	get := lookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, file)
	cfg, err := parseConfig(nil, get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WriteKey != "from-file" || cfg.CollectorURL != "http://env:8080" || cfg.Duration != 30*time.Second ||
		cfg.Brokers != "127.0.0.1:19092" || cfg.Rate != 200 || len(cfg.Metrics) != 5 || cfg.Metrics[2].Stage != "stitcher" {
		t.Errorf("environment over file over defaults: %+v", cfg)
	}
	cfg, err = parseConfig([]string{"-collector", "http://flag:1", "-seconds", "5", "-rate", "50"}, get)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CollectorURL != "http://flag:1" || cfg.Duration != 5*time.Second || cfg.Rate != 50 {
		t.Errorf("flags win: %+v", cfg)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	base := map[string]string{"FP_WRITE_KEY": "k"}
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no write key", map[string]string{}, nil, "FP_WRITE_KEY"},
		{"bad seconds", map[string]string{"FP_WRITE_KEY": "k", "FP_DEMO_SECONDS": "soon"}, nil, "FP_DEMO_SECONDS"},
		{"zero rate", base, []string{"-rate", "0"}, "-rate"},
		{"bad collector", base, []string{"-collector", "127.0.0.1:8080"}, "-collector"},
		{"bad metrics", base, []string{"-metrics", "collector"}, "-metrics"},
	} {
		get := lookup(func(string) (string, bool) { return "", false }, tc.vars)
		_, err := parseConfig(tc.args, get)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}
