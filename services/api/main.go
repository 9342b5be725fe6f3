// Command api serves the profile (customer 360) API over REST, reading live
// state from Redis; the control plane, privacy requests and the gRPC face
// grow here (see ARCHITECTURE.md).
package main

import (
	"context"
	"flag"
	"os"
	"strings"

	"github.com/firstparty/firstparty/pkg/app"
	"github.com/firstparty/firstparty/pkg/chclient"
	"github.com/firstparty/firstparty/pkg/config"
	"github.com/firstparty/firstparty/pkg/deps"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/kafkaclient"
	"github.com/firstparty/firstparty/pkg/privacy"
	"github.com/firstparty/firstparty/pkg/redisclient"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/suppression"
	"github.com/firstparty/firstparty/pkg/topics"
)

type service struct {
	kafka      kafkaclient.Config
	topics     topics.Names
	redis      redisclient.Config
	clickhouse chclient.Config
	adminKeys  config.List
	keys       map[string]string // admin key → workspace
}

func (s *service) RegisterFlags(fs *flag.FlagSet) {
	s.kafka.RegisterFlags(fs, "api")
	s.topics.RegisterFlags(fs)
	s.redis.RegisterFlags(fs)
	s.clickhouse.RegisterFlags(fs)
	fs.Var(&s.adminKeys, "admin.keys", "admin keys and the workspace each may read, as key=workspace (comma-separated); sent as Authorization: Bearer <key>")
}

func (s *service) Validate() error {
	s.keys = map[string]string{}
	for _, kv := range s.adminKeys {
		k, ws, ok := strings.Cut(kv, "=")
		if !ok || len(k) < 16 || ws == "" {
			return config.Field("admin.keys", "each entry must be <key of at least 16 characters>=<workspace>")
		}
		s.keys[k] = ws
	}
	return config.ValidateAll(&s.kafka, &s.topics, &s.redis, &s.clickhouse)
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
	if len(s.keys) == 0 {
		a.Log.Warn("no admin keys configured (-admin.keys): every profile request will get 401")
	}
	graph := identity.New(rdb, identity.DefaultConfig())
	profiles := newProfileAPI(graph, segstate.New(rdb), s.keys, producer, s.topics.Profiles)
	profiles.register(a.Mux)
	(&privacyAPI{profiles: profiles, svc: &privacy.Service{Graph: graph, Suppression: suppression.New(rdb), Redis: rdb,
		ClickHouse: ch, Database: s.clickhouse.Database, Changes: producer, Topic: s.topics.Profiles}}).register(a.Mux)
	return nil
}

func main() { os.Exit(app.Main("api", ":8090", &service{})) }
