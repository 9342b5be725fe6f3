package testinfra

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/topics"
)

// StartService runs a service in-process, configured only by env (the FP_*
// variables it would read from the environment), with its HTTP server on a
// free loopback port. stop drains it like SIGTERM and fails the test if it
// stops with an error. Logs go to stderr with -v, else nowhere.
func StartService(t testing.TB, name string, svc app.Service, env map[string]string) (a *app.App, stop func()) {
	t.Helper()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var ac app.Config
	ac.RegisterFlags(fs, "127.0.0.1:0")
	svc.RegisterFlags(fs)
	if err := config.Parse(fs, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := config.ValidateAll(&ac, svc); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("service", name)
	}
	a = app.New(name, ac, log)
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.Start(ctx, a); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s stopped with error: %v", name, err)
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// TopicEnv is the environment that points a service at the given topics.
func TopicEnv(names topics.Names) map[string]string {
	return map[string]string{
		"FP_TOPIC_RAW": names.Raw, "FP_TOPIC_VALID": names.Valid, "FP_TOPIC_INVALID": names.Invalid,
		"FP_TOPIC_RESOLVED": names.Resolved, "FP_TOPIC_PROFILES": names.Profiles, "FP_TOPIC_MEMBERSHIP": names.Membership,
		"FP_TOPIC_TIMERS": names.Timers, "FP_TOPIC_WEBHOOKS_DEAD": names.WebhooksDead,
	}
}

// With returns a copy of env with extra entries.
func With(env map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(env)+len(kv)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
