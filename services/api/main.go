// Command api serves the profile (customer 360) API and privacy requests
// over REST, reading live state from Redis and history from ClickHouse,
// behind scoped admin keys (pkg/access), and the control plane: the
// workspaces' configuration on the config topic (pkg/controlplane). The
// gRPC face grows here (see ARCHITECTURE.md). Endpoints and their scopes:
// profiles.go, privacy.go and config.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	"github.com/firstparty/firstparty/pkg/access"
	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/controlplane"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/history"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/topics"
	"github.com/firstparty/firstparty/pkg/webhook"
	apiv1 "github.com/firstparty/firstparty/proto/api/v1"
)

type service struct {
	kafka      kafkaclient.Config
	topics     topics.Names
	redis      redisclient.Config
	clickhouse chclient.Config
	adminKeys  config.List
	keys       *access.Keyring
	// sourcesFile: the workspace configuration, for its PII rules (what
	// is masked for keys without pii:read); empty: the default list only.
	sourcesFile     string
	sourcesInterval time.Duration
	configFrom      controlplane.Options
	// destinations: where a workspace's own key may point a webhook.
	destinations webhook.URLPolicy
	// grpcAddr: the gRPC face of the API; empty: REST only.
	grpcAddr string
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "api")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
	s.clickhouse.RegisterFlags(fs)
	fs.Var(&s.adminKeys, "admin.keys", "admin keys, comma-separated, each <key>=<workspace>[:<scope>+<scope>…]; no scopes: every scope of the workspace. Scopes: "+scopeNames()+". Sent as Authorization: Bearer <key>")
	fs.StringVar(&s.sourcesFile, "sources.file", "", "workspace configuration; its PII rules add to the fields masked for keys without pii:read. With -config.source=topic it seeds an empty config topic once")
	fs.DurationVar(&s.sourcesInterval, "sources.reload-interval", 2*time.Second, "how often the configuration file is checked for changes")
	s.configFrom.RegisterFlags(fs)
	fs.StringVar(&s.grpcAddr, "grpc-addr", ":8091", "listen address of the gRPC face of the API (the REST face is on the HTTP address); empty: off")
	fs.BoolVar(&s.destinations.AllowHTTP, "destinations.allow-http", false, "let workspace keys save webhook destinations with plain http URLs (operator keys always may)")
	fs.BoolVar(&s.destinations.AllowPrivate, "destinations.allow-private", false, "let workspace keys save webhook destinations on loopback, private or link-local hosts (operator keys always may; the segmenter checks again at delivery, see its -webhooks.allow-private)")
}

func scopeNames() string {
	var out []string
	for _, sc := range access.All {
		out = append(out, string(sc))
	}
	return strings.Join(out, ", ")
}

func (s *service) Validate() error {
	keys, err := access.Parse(s.adminKeys)
	if err != nil {
		return config.Field("admin.keys", "%v", err)
	}
	s.keys = keys
	if s.grpcAddr != "" {
		if _, _, err := net.SplitHostPort(s.grpcAddr); err != nil {
			return config.Field("grpc-addr", "%q is not host:port", s.grpcAddr)
		}
	}
	if s.sourcesFile != "" {
		if _, err := os.Stat(s.sourcesFile); err != nil {
			return config.Field("sources.file", "%v", err)
		}
	}
	return config.ValidateAll(&s.configFrom, &s.kafka, &s.topics, &s.redis, &s.clickhouse)
}

func (s *service) Start(ctx context.Context, a *app.App) error {
	producer, err := deps.Kafka(ctx, a, s.kafka, s.topics.All())
	if err != nil {
		return err
	}
	rdb := deps.Redis(a, s.redis)
	ch, err := deps.ClickHouse(ctx, a, s.clickhouse)
	if err != nil {
		return err
	}
	var (
		live  *sources.Live
		store *controlplane.Store
	)
	if s.configFrom.FromTopic() {
		r, err := deps.ConfigReader(ctx, a, s.kafka, s.configFrom)
		if err != nil {
			return err
		}
		live, store = r.Live(), controlplane.NewStore(r, producer)
		if s.sourcesFile != "" {
			s.seed(a, store)
		}
	} else {
		live, err = deps.Sources(ctx, a, s.kafka, s.configFrom, s.sourcesFile, s.sourcesInterval)
		if err != nil {
			return config.Field("sources.file", "%v", err)
		}
	}
	if s.keys.Len() == 0 {
		a.Log.Warn("no admin keys configured (-admin.keys): every API request will get 401")
	}
	au := &auth{keys: s.keys, rules: func(ws string) []pii.Rule { return live.Current().PIIRules(ws) }}
	api := newAPI(au, rdb, ch, s.clickhouse.Database, producer, s.topics.Profiles)
	api.privacy.svc.Log = a.Log
	api.config = &configAPI{auth: au, store: store, destinations: s.destinations, log: a.Log}
	srv := api.grpcServer(newRPCMetrics(a.Registry, a.Log))
	gw, err := api.gateway(ctx, srv)
	if err != nil {
		return err
	}
	a.OnStop("rest gateway", func(context.Context) error { return gw.Close() })
	api.register(a.Mux, gw)
	if s.grpcAddr != "" {
		a.GoServe("grpc admin api", s.grpcAddr, srv)
	}
	return nil
}

// seed writes the -sources.file into the config topic when the topic holds
// no workspace yet (first start of a deployment), once the reader runs;
// /readyz waits for it, so nothing is sent before the configuration is in
// force. A file that does not build stops the API.
func (s *service) seed(a *app.App, store *controlplane.Store) {
	var done atomic.Bool
	a.Check("config seed", func(context.Context) error {
		if !done.Load() {
			return errors.New("seeding the config topic from -sources.file")
		}
		return nil
	})
	a.Go("config seed", func(ctx context.Context) error {
		data, err := os.ReadFile(s.sourcesFile)
		if err != nil {
			return fmt.Errorf("reading sources: %w", err)
		}
		c, err := sources.ParseConfig(data)
		if err != nil {
			return fmt.Errorf("%s: %w", s.sourcesFile, err)
		}
		seeded, err := store.Seed(ctx, c)
		if err != nil {
			return fmt.Errorf("%s: %w", s.sourcesFile, err)
		}
		if seeded {
			a.Log.Info("config topic seeded from the file", "file", s.sourcesFile, "workspaces", len(c.Workspaces))
		} else {
			a.Log.Info("config topic already holds workspaces; the file is not applied (use POST /v1/config:apply or fpctl apply)", "file", s.sourcesFile)
		}
		done.Store(true)
		return nil
	})
}

// api is every service, wired to its stores.
type api struct {
	auth     *auth
	profiles *profileAPI
	privacy  *privacyAPI
	config   *configAPI // nil: no control plane (tests of the other services)
}

// newAPI wires the endpoints; ch may be nil (no history: the events
// endpoint answers 503, export and erase leave ClickHouse out).
func newAPI(au *auth, rdb redis.UniversalClient, ch driver.Conn, database string, changes stage.Sink, topic string) *api {
	graph := identity.New(rdb, identity.DefaultConfig())
	segs, cons := segstate.New(rdb), consent.NewStore(rdb)
	var hist *history.Reader
	if ch != nil {
		hist = &history.Reader{ClickHouse: ch, Database: database}
	}
	return &api{
		auth:     au,
		profiles: &profileAPI{graph: graph, segments: segs, consent: cons, history: hist, auth: au, changes: changes, changesTopic: topic, now: time.Now},
		privacy: &privacyAPI{auth: au, now: time.Now, svc: &privacy.Service{Graph: graph, Suppression: suppression.New(rdb), Redis: rdb, Consent: cons,
			Segments: segs, ClickHouse: ch, Database: database, Changes: changes, Topic: topic}},
	}
}

// grpcServer serves every service over gRPC, with reflection (grpcurl)
// and the standard health service.
func (a *api) grpcServer(m *rpcMetrics) *grpc.Server {
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage), grpc.InTapHandle(a.auth.tap),
		grpc.ChainUnaryInterceptor(m.unary), grpc.ChainStreamInterceptor(m.stream))
	apiv1.RegisterProfileServiceServer(srv, a.profiles)
	apiv1.RegisterPrivacyServiceServer(srv, a.privacy)
	if a.config != nil {
		apiv1.RegisterConfigServiceServer(srv, a.config)
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv
}

// gateway is the REST face of srv.
func (a *api) gateway(ctx context.Context, srv *grpc.Server) (*gateway, error) {
	regs := []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		apiv1.RegisterProfileServiceHandler, apiv1.RegisterPrivacyServiceHandler}
	if a.config != nil {
		regs = append(regs, apiv1.RegisterConfigServiceHandler)
	}
	gw, err := newGateway(ctx, srv, regs...)
	if err != nil {
		return nil, err
	}
	if err := gw.mux.HandlePath("POST", "/v1/privacy/export", exportREST(gw.mux, apiv1.NewPrivacyServiceClient(gw.conn))); err != nil {
		_ = gw.Close()
		return nil, err
	}
	return gw, nil
}

// register mounts the REST face and the OpenAPI document on mux.
func (a *api) register(mux *http.ServeMux, gw *gateway) {
	mux.Handle("/v1/", a.authenticated(gw))
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(apiv1.OpenAPI)
	})
}

// authenticated answers UNAUTHENTICATED (401) before the gateway reads a
// body when the request carries no known admin key, so nobody without a
// key makes the API read (up to maxBody of) a request; the methods check
// the key again, with its scope.
func (a *api) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The key comes from the Authorization header alone: the gateway
		// would also pass Grpc-Metadata-Authorization on as metadata.
		r.Header.Del("Grpc-Metadata-Authorization")
		if _, err := a.auth.authenticateMD(metadata.MD{"authorization": r.Header.Values("Authorization")}); err != nil {
			writeErrorBody(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func main() { os.Exit(app.Main("api", ":8090", &service{})) }
