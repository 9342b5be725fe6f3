// Package redisclient builds the Redis client every stateful stage uses.
//
// It returns a go-redis UniversalClient: one address gives a single-node
// client, several give a Redis Cluster client. Every Firstparty key carries
// its workspace as a hash tag (fp:{ws}:…), so one workspace's keys live on one
// cluster shard and a Lua script can update them atomically; one shard's
// ceiling is therefore one workspace's ceiling (about 80 k unpipelined writes/s
// per shard on our 2-core baseline, see SERVERS.md).
package redisclient

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/firstparty/firstparty/pkg/config"
)

// DefaultAddr is where deploy/local/servers.sh starts Redis.
const DefaultAddr = "127.0.0.1:16379"

// Config is the Redis part of a service's configuration.
type Config struct {
	Addrs       config.List
	Password    string
	DB          int
	PoolSize    int
	DialTimeout time.Duration
}

func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Addrs = config.List{DefaultAddr}
	fs.Var(&c.Addrs, "redis.addr", "Redis address (host:port); several comma-separated addresses mean a Redis Cluster")
	fs.StringVar(&c.Password, "redis.password", "", "Redis password")
	fs.IntVar(&c.DB, "redis.db", 0, "Redis database number (single node only)")
	fs.IntVar(&c.PoolSize, "redis.pool-size", 0, "connections per node (0: 10 per CPU)")
	fs.DurationVar(&c.DialTimeout, "redis.dial-timeout", 5*time.Second, "timeout to connect to Redis")
}

func (c *Config) Validate() error {
	if len(c.Addrs) == 0 {
		return config.Field("redis.addr", "no address given")
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return config.Field("redis.addr", "%q is not host:port", a)
		}
	}
	if c.DB < 0 || c.DB > 15 {
		return config.Field("redis.db", "must be 0..15, got %d", c.DB)
	}
	if c.DB != 0 && len(c.Addrs) > 1 {
		return config.Field("redis.db", "a Redis Cluster has only database 0")
	}
	return nil
}

// New returns a client; it does not connect until first use.
func New(c Config) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:       c.Addrs,
		Password:    c.Password,
		DB:          c.DB,
		PoolSize:    c.PoolSize,
		DialTimeout: c.DialTimeout,
		// go-redis retries commands after network errors; every write and
		// script in Firstparty is idempotent for that reason.
		MaxRetries: 3,
	})
}

// Ping checks that Redis answers.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}
