package main

import (
	"encoding/base64"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/topics"
)

func TestClientIP(t *testing.T) {
	cfg := &Config{TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1"}, SourcesFile: "main.go", ProduceTimeout: 1, MaxInflightMB: 1, RateLimit: 1, RateBurst: 1}
	cfg.Limits.MaxEventBytes, cfg.Limits.MaxBatchBytes, cfg.Limits.MaxBatchEvents, cfg.Limits.MaxDepth = 1024, 2048, 1, 8
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct client", "203.0.113.7:5555", "", "203.0.113.7"},
		{"untrusted peer cannot spoof", "203.0.113.7:5555", "1.2.3.4", "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:80", "198.51.100.9", "198.51.100.9"},
		{"chain of trusted proxies", "10.1.2.3:80", "198.51.100.9, 192.168.1.1, 10.9.9.9", "198.51.100.9"},
		{"client-supplied left part ignored", "10.1.2.3:80", "6.6.6.6, 198.51.100.9", "198.51.100.9"},
		{"garbage hop stops the walk", "10.1.2.3:80", "nonsense", "10.1.2.3"},
		{"ipv6", "[2001:db8::1]:443", "", "2001:db8::1"},
		{"v4-mapped v6", "[::ffff:203.0.113.7]:1", "", "203.0.113.7"},
		{"bad remote", "pipe", "", ""},
	}
	for _, tt := range tests {
		if got := clientIP(tt.remote, tt.xff, cfg); got != tt.want {
			t.Errorf("%s: clientIP = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBasicUser(t *testing.T) {
	b := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for in, want := range map[string]string{
		b("wk_123:"):        "wk_123",
		b("wk_123:ignored"): "wk_123",
		b("wk_123"):         "wk_123",
		"basic " + base64.StdEncoding.EncodeToString([]byte("k:")): "k",
		"Bearer abc": "",
		"Basic !!!":  "",
		"":           "",
		"Basic":      "",
	} {
		if got := basicUser(in); got != want {
			t.Errorf("basicUser(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCodeFor(t *testing.T) {
	for status, want := range map[int]codes.Code{
		200: codes.OK, 400: codes.InvalidArgument, 401: codes.Unauthenticated, 403: codes.PermissionDenied,
		413: codes.ResourceExhausted, 429: codes.ResourceExhausted, 503: codes.Unavailable, 500: codes.Internal,
	} {
		if got := codeFor(status); got != want {
			t.Errorf("codeFor(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestRateLimitPerSource(t *testing.T) {
	in := newIngestor(Config{RateLimit: 100, RateBurst: 100, MaxInflightMB: 1}, nil, nil, defaultTopics(), newMetrics(nil), nil)
	now := time.Now()
	noisy := &sources.Resolved{WorkspaceID: "w", SourceID: "noisy"}
	quiet := &sources.Resolved{WorkspaceID: "w", SourceID: "quiet"}
	if _, ok := in.allow(noisy, 100, now); !ok {
		t.Fatal("burst refused")
	}
	wait, ok := in.allow(noisy, 50, now)
	if ok || wait < time.Second {
		t.Fatalf("over the limit: ok=%v wait=%v", ok, wait)
	}
	if _, ok := in.allow(quiet, 100, now); !ok {
		t.Fatal("a noisy source starved a quiet one")
	}
	if _, ok := in.allow(noisy, 50, now.Add(time.Second)); !ok {
		t.Fatal("tokens did not refill")
	}
	custom := &sources.Resolved{WorkspaceID: "w", SourceID: "custom", RateLimit: &sources.RateLimit{EventsPerSecond: 1, Burst: 5}}
	if _, ok := in.allow(custom, 6, now); ok {
		t.Fatal("source rate_limit not applied")
	}
}

func defaultTopics() topics.Names { return topics.Defaults() }
