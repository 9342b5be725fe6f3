// Package chclient builds the ClickHouse connection of the loader and the API.
//
// It uses the native protocol (clickhouse-go's HTTP transport fails against
// the ClickHouse 18.16 our test machines run). Batch inserts must name their
// columns explicitly for 18.16 to accept them.
package chclient

import (
	"context"
	"flag"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/firstparty/firstparty/pkg/config"
)

// DefaultAddr is where deploy/local/servers.sh starts ClickHouse (native port).
const DefaultAddr = "127.0.0.1:19000"

// Config is the ClickHouse part of a service's configuration.
type Config struct {
	Addrs       config.List
	Database    string
	Username    string
	Password    string
	DialTimeout time.Duration
}

func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Addrs = config.List{DefaultAddr}
	fs.Var(&c.Addrs, "clickhouse.addr", "ClickHouse native-protocol addresses (host:port, comma-separated)")
	fs.StringVar(&c.Database, "clickhouse.database", "firstparty", "ClickHouse database")
	fs.StringVar(&c.Username, "clickhouse.username", "default", "ClickHouse user")
	fs.StringVar(&c.Password, "clickhouse.password", "", "ClickHouse password")
	fs.DurationVar(&c.DialTimeout, "clickhouse.dial-timeout", 5*time.Second, "timeout to connect to ClickHouse")
}

func (c *Config) Validate() error {
	if len(c.Addrs) == 0 {
		return config.Field("clickhouse.addr", "no address given")
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return config.Field("clickhouse.addr", "%q is not host:port", a)
		}
	}
	if !identifier.MatchString(c.Database) {
		return config.Field("clickhouse.database", "%q is not a plain identifier (letters, digits, _)", c.Database)
	}
	return nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Open returns a connection pool to database "default" when db is "", else
// to c.Database. It does not fail when the server is down; Ping does.
func Open(c Config, db string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        c.Addrs,
		Protocol:    clickhouse.Native,
		Auth:        clickhouse.Auth{Database: db, Username: c.Username, Password: c.Password},
		DialTimeout: c.DialTimeout,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("opening clickhouse %v: %w", c.Addrs, err)
	}
	return conn, nil
}

// Ping checks that ClickHouse answers a query.
func Ping(ctx context.Context, conn driver.Conn) error {
	if err := conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse ping: %w", err)
	}
	return nil
}
