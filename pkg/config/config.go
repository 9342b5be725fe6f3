// Package config loads a service's configuration from command-line flags and
// FP_* environment variables, in one way for every service.
//
// Each configurable part (Kafka client, Redis client, a stage) owns a struct
// with RegisterFlags and Validate. A flag named "kafka.brokers" is also read
// from the environment variable FP_KAFKA_BROKERS; a flag on the command line
// wins over the environment, which wins over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvPrefix starts every environment variable the services read.
const EnvPrefix = "FP_"

// EnvName is the environment variable that sets the flag name.
func EnvName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(flagName))
}

// Parse applies the environment, then args, to the flags registered in fs.
// lookup is os.LookupEnv outside tests.
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(f.Name)
		if v, ok := lookup(name); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// Validator is a configuration part that can check itself.
type Validator interface{ Validate() error }

// ValidateAll validates every part and reports all problems at once, so a
// person fixing a bad configuration sees the whole list on the first start.
func ValidateAll(parts ...Validator) error {
	var errs []error
	for _, p := range parts {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Field returns an error naming the flag and its environment variable.
func Field(flagName, format string, args ...any) error {
	return fmt.Errorf("invalid -%s (%s): %s", flagName, EnvName(flagName), fmt.Sprintf(format, args...))
}

// List is a comma-separated flag value ("a:1,b:2").
type List []string

func (l List) String() string { return strings.Join(l, ",") }

// Set replaces the list; empty elements are dropped.
func (l *List) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// SetDefault changes the default of a flag another package registered
// (a stage that wants other consumer batches than the rest, say); the
// environment and the command line still override it. An unknown flag or
// a bad value is a programming error, so it panics.
func SetDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("config.SetDefault: no flag -" + name)
	}
	if err := f.Value.Set(value); err != nil {
		panic(fmt.Sprintf("config.SetDefault: -%s=%s: %v", name, value, err))
	}
	f.DefValue = value
}
