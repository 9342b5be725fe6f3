// Package app is the lifecycle every Firstparty binary shares: configuration
// from flags and FP_* environment variables, a structured logger, a
// Prometheus registry, the admin endpoints (/healthz, /readyz, /metrics) and
// a graceful shutdown on SIGTERM that stops accepting work, finishes what is
// in flight, commits and closes.
//
// A service is a thin shell: it registers its flags, validates them, and in
// Start wires its components (long-running loops), readiness checks and
// closers onto the App. Main does everything else.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/logging"
)

// Service is what a binary plugs into Main.
type Service interface {
	RegisterFlags(fs *flag.FlagSet)
	Validate() error
	// Start wires the service onto a. It may do start-up I/O (create
	// topics, migrate schemas); returning an error aborts the start.
	Start(ctx context.Context, a *App) error
}

// Config is the part of the configuration every service has.
type Config struct {
	HTTPAddr     string
	DrainTimeout time.Duration
	Log          logging.Config
	// Pprof serves /debug/pprof/ (off by default).
	Pprof bool
	// GCPercent is the Go collector's target heap growth (GOGC). The
	// runtime's default of 100 spent a quarter of the segmenter's CPU on
	// allocation and marking at 5,000 events/s; 400 trades heap for it
	// (README, Performance). GOGC in the environment wins.
	GCPercent int
}

func (c *Config) RegisterFlags(fs *flag.FlagSet, defaultAddr string) {
	fs.StringVar(&c.HTTPAddr, "http-addr", defaultAddr, "listen address of the HTTP server (/healthz, /readyz, /metrics and the service's own API)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 20*time.Second, "on SIGTERM, how long in-flight requests and batches may take to finish")
	fs.BoolVar(&c.Pprof, "debug.pprof", false, "serve Go's profiler under /debug/pprof/ on the HTTP address (keep that address private)")
	fs.IntVar(&c.GCPercent, "go.gc-percent", 400, "Go garbage collector target (GOGC): how far the heap grows past the live data before a collection; higher spends memory to save CPU, -1 turns collection off (with GOMEMLIMIT as the bound); ignored when GOGC is set")
	c.Log.RegisterFlags(fs)
}

func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return config.Field("http-addr", "%q is not host:port or :port", c.HTTPAddr)
	}
	if c.DrainTimeout < 0 {
		return config.Field("drain-timeout", "must not be negative, got %v", c.DrainTimeout)
	}
	if c.GCPercent < -1 {
		return config.Field("go.gc-percent", "must be -1 (off) or a percentage, got %d", c.GCPercent)
	}
	return c.Log.Validate()
}

// Main runs svc as the binary name until SIGINT/SIGTERM and returns the
// process exit code: 0 after a clean shutdown, 1 on failure, 2 on bad
// configuration.
func Main(name, defaultAddr string, svc Service) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return MainContext(ctx, name, defaultAddr, svc, os.Args[1:], nil)
}

// MainContext is Main with an explicit context, arguments and environment
// lookup (nil: the process environment), for tests and for a binary that
// runs several services in one process.
func MainContext(ctx context.Context, name, defaultAddr string, svc Service, args []string, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags(fs, defaultAddr)
	svc.RegisterFlags(fs)
	if err := config.Parse(fs, args, lookup); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	if err := config.ValidateAll(&cfg, svc); err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration:\n%v\n", name, err)
		return 2
	}
	log := logging.New(cfg.Log, os.Stderr, name)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(cfg.GCPercent)
	}
	a := New(name, cfg, log)
	if err := svc.Start(ctx, a); err != nil {
		log.Error("start failed", "err", err)
		a.close()
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// App holds one running service's shared parts.
type App struct {
	Name     string
	Log      *slog.Logger
	Registry *prometheus.Registry
	// Mux serves the service's own routes beside the admin endpoints.
	Mux *http.ServeMux
	cfg Config

	mu       sync.Mutex
	checks   []check
	comps    []component
	closers  []component
	listener net.Listener
	started  chan struct{}
	draining atomic.Bool
}

type check struct {
	name  string
	probe func(context.Context) error
}

type component struct {
	name string
	run  func(context.Context) error
}

// New returns an App; Main calls it, tests may too.
func New(name string, cfg Config, log *slog.Logger) *App {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "firstparty_build_info", Help: "Build of this binary; always 1.",
	}, []string{"service", "version", "goversion"})
	info.WithLabelValues(name, version(), runtime.Version()).Set(1)
	reg.MustRegister(info)
	return &App{Name: name, Log: log, Registry: reg, Mux: http.NewServeMux(), cfg: cfg, started: make(chan struct{})}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

// DrainTimeout is the configured drain timeout, for stage runners.
func (a *App) DrainTimeout() time.Duration { return a.cfg.DrainTimeout }

// Check adds a readiness check: /readyz answers 200 only when every check
// passes. Checks run on each request with a short timeout.
func (a *App) Check(name string, probe func(ctx context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, check{name, probe})
}

// Go adds a component that runs until its context ends, then drains and
// returns. A component that returns an error stops the whole service.
func (a *App) Go(name string, run func(ctx context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.comps = append(a.comps, component{name, run})
}

// OnStop adds a closer; closers run in reverse order after every component
// has returned (close a producer after the stage that uses it).
func (a *App) OnStop(name string, fn func(ctx context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closers = append(a.closers, component{name, fn})
}

// Addr is the HTTP server's address once Run is serving (useful with port 0).
func (a *App) Addr() string {
	<-a.started
	return a.listener.Addr().String()
}

// Run serves HTTP, runs every component, and on ctx's end (or a component's
// failure) shuts down in order: not ready, HTTP drained, components drained,
// closers run.
func (a *App) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		a.close()
		return fmt.Errorf("listening on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.listener = ln
	a.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	a.Mux.HandleFunc("GET /readyz", a.readyz)
	a.Mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry}))
	if a.cfg.Pprof {
		a.Mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		a.Mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		a.Mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		a.Mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	srv := &http.Server{Handler: a.Mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	compCtx, cancelComps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelComps()
	g, gctx := errgroup.WithContext(compCtx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	for _, c := range a.comps {
		g.Go(func() error {
			if err := c.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
	close(a.started)
	a.Log.Info("started", "http_addr", ln.Addr().String(), "components", len(a.comps))

	select {
	case <-ctx.Done():
		a.Log.Info("shutting down", "drain_timeout", a.cfg.DrainTimeout)
	case <-gctx.Done():
		a.Log.Error("a component failed; shutting down")
	}
	a.draining.Store(true)
	drainCtx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout+time.Second)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		a.Log.Warn("http server did not drain in time", "err", err)
		_ = srv.Close()
	}
	cancelComps()
	err = g.Wait()
	a.close()
	if err == nil {
		a.Log.Info("stopped cleanly")
	}
	return err
}

func (a *App) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i].run(ctx); err != nil {
			a.Log.Warn("closing", "what", a.closers[i].name, "err", err)
		}
	}
	a.closers = nil
}

// readyz answers 200 with each check's result, or 503 naming what is down.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	a.mu.Lock()
	checks := append([]check(nil), a.checks...)
	a.mu.Unlock()
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := !a.draining.Load()
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := "ok"
			if err := c.probe(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			results[c.name] = res
			if res != "ok" {
				ok = false
			}
		}()
	}
	wg.Wait()
	body := map[string]any{"service": a.Name, "status": "ready", "checks": results}
	code := http.StatusOK
	if !ok {
		body["status"] = "not ready"
		if a.draining.Load() {
			body["status"] = "draining"
		}
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}
