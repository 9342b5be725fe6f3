package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/firstparty/firstparty/pkg/topics"
)

const usage = `fpctl — the Firstparty API from the command line

  fpctl apply -f config.yaml [--dry-run]           upsert every workspace of the file (POST /v1/config:apply)
  fpctl workspace get <ws>                         print a workspace's configuration document
  fpctl sources create <ws> <id> [--name N] [--origin URL]…   a new source; prints its write key
  fpctl keys rotate <ws> <source> [--retire KEY]… [--retire-all]   add a write key, optionally retire old ones
  fpctl keys revoke <ws> <source> <key>            remove a write key
  fpctl segments list <ws>                         the workspace's segments
  fpctl segments get <ws> <id>                     one segment's definition
  fpctl segments apply <ws> -f segment.yaml        create or replace the segment(s) of the file (compiled on save)
  fpctl segments delete <ws> <id>                  remove a segment
  fpctl destinations list <ws>                     the workspace's webhook destinations
  fpctl destinations apply <ws> -f dest.yaml       create or replace the destination(s) of the file
  fpctl destinations delete <ws> <id>              remove a destination
  fpctl profile get <type:value>                   a profile (customer 360), e.g. user_id:42
  fpctl erase <type:value> --reason TEXT           erase a person (privacy:erase)
  fpctl tail triggers [--workspace WS] [--from-beginning]   print segment enter/exit transitions from Kafka

Everywhere: --api-url (FP_API_URL), --admin-key (FP_ADMIN_KEY), --json (print the API's JSON);
tail: --brokers (FP_KAFKA_BROKERS), --topic (FP_TOPIC_MEMBERSHIP).
Exit codes: 0 done, 1 refused or failed, 2 bad command line, 3 API or Kafka unreachable or 5xx.
`

// command is one parsed invocation: what to call, pure data.
type command struct {
	name   string // "apply", "workspace get", "sources create", …
	args   []string
	apiURL string
	key    string
	json   bool

	file          string
	dryRun        bool
	srcName       string
	origins       []string
	retire        []string
	retireAll     bool
	reason        string
	brokers       string
	topic         string
	workspace     string
	fromBeginning bool
}

// usageError is a wrong command line (exit code 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// positional arguments of each command (words after the command name).
var arity = map[string]int{
	"apply": 0, "workspace get": 1, "sources create": 2, "keys rotate": 2, "keys revoke": 3,
	"profile get": 1, "erase": 1, "tail triggers": 0,
	"segments list": 1, "segments get": 2, "segments apply": 1, "segments delete": 2,
	"destinations list": 1, "destinations apply": 1, "destinations delete": 2,
}

// parse reads the command line; flags may come before, between or after
// the words. env supplies the FP_* defaults.
func parse(argv []string, env func(string) string) (command, error) {
	c := command{apiURL: env("FP_API_URL"), key: env("FP_ADMIN_KEY"), brokers: env("FP_KAFKA_BROKERS"), topic: env("FP_TOPIC_MEMBERSHIP")}
	if c.topic == "" {
		c.topic = topics.DefaultMembership
	}
	fs := flag.NewFlagSet("fpctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.apiURL, "api-url", c.apiURL, "")
	fs.StringVar(&c.key, "admin-key", c.key, "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.StringVar(&c.file, "f", "", "")
	fs.StringVar(&c.file, "file", "", "")
	fs.BoolVar(&c.dryRun, "dry-run", false, "")
	fs.StringVar(&c.srcName, "name", "", "")
	fs.Var((*multi)(&c.origins), "origin", "")
	fs.Var((*multi)(&c.retire), "retire", "")
	fs.BoolVar(&c.retireAll, "retire-all", false, "")
	fs.StringVar(&c.reason, "reason", "", "")
	fs.StringVar(&c.brokers, "brokers", c.brokers, "")
	fs.StringVar(&c.topic, "topic", c.topic, "")
	fs.StringVar(&c.workspace, "workspace", "", "")
	fs.BoolVar(&c.fromBeginning, "from-beginning", false, "")
	var words []string
	for rest := argv; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return command{name: "help"}, nil
			}
			return command{}, usagef("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		words = append(words, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(words) == 0 || words[0] == "help" {
		return command{name: "help"}, nil
	}
	c.name = words[0]
	if _, ok := arity[c.name]; !ok && len(words) > 1 {
		c.name = words[0] + " " + words[1]
	}
	n, ok := arity[c.name]
	if !ok {
		return command{}, usagef("unknown command %q; run fpctl help", strings.Join(words[:min(2, len(words))], " "))
	}
	c.args = words[len(strings.Fields(c.name)):]
	if len(c.args) != n {
		return command{}, usagef("%s takes %d argument(s), got %d: %q; run fpctl help", c.name, n, len(c.args), c.args)
	}
	switch c.name {
	case "apply":
		if c.file == "" {
			return command{}, usagef("apply needs -f <config.yaml> (- for standard input)")
		}
	case "segments apply", "destinations apply":
		if c.file == "" {
			return command{}, usagef("%s needs -f <file.yaml> (- for standard input): one definition, or a list of them", c.name)
		}
	case "profile get", "erase":
		if t, v, ok := strings.Cut(c.args[0], ":"); !ok || t == "" || v == "" {
			return command{}, usagef("%q is not an identifier: write <type>:<value>, e.g. user_id:42 or email:ann@example.com", c.args[0])
		}
		if c.name == "erase" && strings.TrimSpace(c.reason) == "" {
			return command{}, usagef("erase needs --reason (it is written to the audit log)")
		}
	case "keys rotate":
		if c.retireAll && len(c.retire) > 0 {
			return command{}, usagef("use --retire KEY or --retire-all, not both")
		}
	}
	if c.name == "tail triggers" {
		if c.brokers == "" {
			return command{}, usagef("tail needs Kafka: set FP_KAFKA_BROKERS or --brokers host:port")
		}
		return c, nil
	}
	if c.apiURL == "" {
		return command{}, usagef("no API address: set FP_API_URL or --api-url (make up writes it to .local/demo.env)")
	}
	if u, err := url.Parse(c.apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return command{}, usagef("--api-url %q: use http(s)://host:port", c.apiURL)
	}
	if c.key == "" {
		return command{}, usagef("no admin key: set FP_ADMIN_KEY or --admin-key")
	}
	return c, nil
}
