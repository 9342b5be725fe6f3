// Package logging builds the structured logger every service uses:
// JSON lines for machines (the default) or text for a person at a terminal.
package logging

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/firstparty/firstparty/pkg/config"
)

// Config selects the log format and level.
type Config struct {
	Format string // "json" or "text"
	Level  string // "debug", "info", "warn", "error"
}

func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Format, "log.format", "json", `log format: "json" (production) or "text" (humans)`)
	fs.StringVar(&c.Level, "log.level", "info", "minimum level: debug, info, warn or error")
}

func (c *Config) Validate() error {
	if c.Format != "json" && c.Format != "text" {
		return config.Field("log.format", "%q is not json or text", c.Format)
	}
	if _, err := parseLevel(c.Level); err != nil {
		return config.Field("log.level", "%v", err)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a logger writing to w, tagged with the service name.
func New(c Config, w io.Writer, service string) *slog.Logger {
	level, err := parseLevel(c.Level)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("service", service)
}
