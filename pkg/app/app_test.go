package app

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firstparty/firstparty/pkg/logging"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLifecycle(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := New("testsvc", Config{HTTPAddr: "127.0.0.1:0", DrainTimeout: time.Second, Log: logging.Config{Format: "text", Level: "info"}}, log)

	var depUp atomic.Bool
	a.Check("redis", func(context.Context) error {
		if !depUp.Load() {
			return errors.New("connection refused")
		}
		return nil
	})
	var drained, closed atomic.Bool
	a.Go("loop", func(ctx context.Context) error {
		<-ctx.Done()
		drained.Store(true)
		return nil
	})
	a.OnStop("producer", func(context.Context) error {
		if !drained.Load() {
			t.Error("closer ran before the component drained")
		}
		closed.Store(true)
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	base := "http://" + a.Addr()

	if code, body := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz = %d %s", code, body)
	}
	code, body := get(t, base+"/readyz")
	if code != 503 || !strings.Contains(body, "connection refused") {
		t.Fatalf("readyz with a dependency down = %d %s; want 503 naming the failure", code, body)
	}
	depUp.Store(true)
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"redis":"ok"`) {
		t.Fatalf("readyz = %d %s", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, `firstparty_build_info{goversion=`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics = %d, missing build info or go metrics", code)
	}

	cancel() // SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	if !drained.Load() || !closed.Load() {
		t.Fatalf("drained=%v closed=%v", drained.Load(), closed.Load())
	}
}

func TestComponentFailureStopsService(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := New("testsvc", Config{HTTPAddr: "127.0.0.1:0", DrainTimeout: time.Second}, log)
	a.Go("broken", func(context.Context) error { return errors.New("boom") })
	err := a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "broken: boom") {
		t.Fatalf("Run = %v, want the component's error", err)
	}
}

func TestMainRejectsBadConfig(t *testing.T) {
	env := map[string]string{"FP_HTTP_ADDR": "nonsense", "FP_LOG_FORMAT": "xml"}
	code := MainContext(context.Background(), "testsvc", ":0", nopService{}, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if code != 2 {
		t.Fatalf("exit code = %d, want 2 for bad configuration", code)
	}
}

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{{"400", true}, {"100", true}, {"-1", true}, {"-2", false}, {"lots", false}} {
		var c Config
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs, ":0")
		err := fs.Parse([]string{"-go.gc-percent", tc.value})
		if err == nil {
			err = c.Validate()
		}
		if (err == nil) != tc.ok {
			t.Errorf("-go.gc-percent %s: err = %v, want ok=%v", tc.value, err, tc.ok)
		}
	}
	var c Config
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.RegisterFlags(fs, ":0")
	if c.GCPercent != 400 {
		t.Errorf("default -go.gc-percent = %d, want 400", c.GCPercent)
	}
}
