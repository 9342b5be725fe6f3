// Package topics is the one place that names the pipeline's Kafka topics.
//
// Flow (ARCHITECTURE.md):
//
//	collector → raw → validator → valid (+ invalid) → stitcher → resolved (+ profile changes)
//	resolved + profile changes → segmenter → membership; everything → loader → ClickHouse
//
// Keys: raw and valid by device (anonymous_id, else user_id) so one device's
// events stay in order; resolved and profile changes by profile_id so the
// segmenter's per-profile state is partition-local.
package topics

import (
	"flag"

	"github.com/firstparty/firstparty/pkg/config"
)

// Default topic names.
const (
	DefaultRaw        = "cdp.events.raw"
	DefaultValid      = "cdp.events.valid"
	DefaultInvalid    = "cdp.events.invalid"
	DefaultResolved   = "cdp.events.resolved"
	DefaultProfiles   = "cdp.profiles.changes"
	DefaultMembership = "cdp.segments.membership"
	// DefaultTimers is the segmenter's own input: due timers and backfill
	// requests become messages keyed by profile, so they are evaluated in
	// order with the profile's events by the partition's owner.
	DefaultTimers = "cdp.segments.timers"
	// DefaultWebhooksDead holds webhook deliveries that failed for good.
	DefaultWebhooksDead = "cdp.segments.webhooks.dead"
	// DefaultConfig is the control plane's compacted topic: one record per
	// workspace (key: workspace id, value: its configuration document,
	// empty: deleted), read from the beginning by every instance of every
	// service (pkg/controlplane). It is not in Names.All: it is created
	// compacted, with one partition, by kafkaclient.EnsureCompacted.
	DefaultConfig = "cdp.config"
)

// Names are the topic names in use; each can be renamed by a flag or FP_TOPIC_*.
type Names struct {
	Raw        string
	Valid      string
	Invalid    string
	Resolved   string
	Profiles   string
	Membership string
	Timers     string
	// WebhooksDead is the dead-letter topic of webhook deliveries.
	WebhooksDead string
}

// Defaults returns the default names.
func Defaults() Names {
	return Names{Raw: DefaultRaw, Valid: DefaultValid, Invalid: DefaultInvalid, Resolved: DefaultResolved,
		Profiles: DefaultProfiles, Membership: DefaultMembership, Timers: DefaultTimers, WebhooksDead: DefaultWebhooksDead}
}

// WithPrefix returns the names with prefix prepended, so tests and several
// environments can share one broker without seeing each other's messages.
func (n Names) WithPrefix(prefix string) Names {
	return Names{Raw: prefix + n.Raw, Valid: prefix + n.Valid, Invalid: prefix + n.Invalid, Resolved: prefix + n.Resolved,
		Profiles: prefix + n.Profiles, Membership: prefix + n.Membership, Timers: prefix + n.Timers, WebhooksDead: prefix + n.WebhooksDead}
}

// All lists every topic, for creation at start.
func (n Names) All() []string {
	return []string{n.Raw, n.Valid, n.Invalid, n.Resolved, n.Profiles, n.Membership, n.Timers, n.WebhooksDead}
}

func (n *Names) RegisterFlags(fs *flag.FlagSet) {
	d := Defaults()
	fs.StringVar(&n.Raw, "topic.raw", d.Raw, "topic of events as the collector accepted them")
	fs.StringVar(&n.Valid, "topic.valid", d.Valid, "topic of validated, cleaned events")
	fs.StringVar(&n.Invalid, "topic.invalid", d.Invalid, "dead-letter topic of rejected events, with reasons")
	fs.StringVar(&n.Resolved, "topic.resolved", d.Resolved, "topic of events resolved to a profile")
	fs.StringVar(&n.Profiles, "topic.profiles", d.Profiles, "topic of profile changes (merges, traits)")
	fs.StringVar(&n.Membership, "topic.membership", d.Membership, "topic of segment enter/exit transitions")
	fs.StringVar(&n.Timers, "topic.timers", d.Timers, "the segmenter's topic of due timers and backfill requests")
	fs.StringVar(&n.WebhooksDead, "topic.webhooks-dead", d.WebhooksDead, "dead-letter topic of webhook deliveries that failed for good")
}

func (n *Names) Validate() error {
	seen := map[string]string{}
	for flagName, v := range map[string]string{
		"topic.raw": n.Raw, "topic.valid": n.Valid, "topic.invalid": n.Invalid,
		"topic.resolved": n.Resolved, "topic.profiles": n.Profiles, "topic.membership": n.Membership,
		"topic.timers": n.Timers, "topic.webhooks-dead": n.WebhooksDead,
	} {
		if err := validName(v); err != nil {
			return config.Field(flagName, "%v", err)
		}
		if other, dup := seen[v]; dup {
			return config.Field(flagName, "topic %q is also used by -%s", v, other)
		}
		seen[v] = flagName
	}
	return nil
}

// validName applies Kafka's rules for topic names.
func validName(s string) error {
	if s == "" {
		return errString("topic name is empty")
	}
	if len(s) > 249 {
		return errString("topic name is longer than 249 characters")
	}
	if s == "." || s == ".." {
		return errString("topic name cannot be . or ..")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return errString("topic name " + `"` + s + `"` + " may only contain letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }
