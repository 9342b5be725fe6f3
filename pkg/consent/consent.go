// Package consent decides whether the person behind an event allowed it to
// be processed, and strips an event that may not be processed down to what
// can be kept about the refusal. It is the first rule of the validator's pure
// core (no I/O): an event from cdp.events.raw that lacks a required consent
// never reaches standardize, the PII policy, a profile or a segment; it goes
// to cdp.events.invalid as REASON_CONSENT_DENIED, stripped by StripPII /
// StripEnvelope, so the dead-letter topic does not become a second copy of
// the data the person refused.
//
// The check fails closed: a category that is absent, set to false, or sent
// twice with disagreeing values counts as not granted.
//
// The package also keeps the consent a person recorded through the API
// (PUT /v1/privacy/consent): Update and Merge are the pure rules (newest
// decision per category wins), Store the Redis shell (store.go, record.lua).
package consent

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// Policy is a workspace's consent requirement.
type Policy struct {
	// Required lists the consent categories an event must carry as granted
	// in context.consent.categoryPreferences to be processed at all, e.g.
	// ["analytics"]. Names are compared case-insensitively, ignoring
	// surrounding white space. Empty: no requirement.
	Required []string `json:"required" yaml:"required"`
}

// Validate reports empty or repeated category names.
func (p Policy) Validate() error {
	seen := map[string]int{}
	for i, c := range p.Required {
		key := fold(c)
		if key == "" {
			return fmt.Errorf("Required[%d] is empty; name a consent category such as \"analytics\"", i)
		}
		if j, ok := seen[key]; ok {
			return fmt.Errorf("Required[%d] %q repeats Required[%d] (names are compared case-insensitively)", i, c, j)
		}
		seen[key] = i
	}
	return nil
}

func fold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Check reports whether ev carries every required category as granted, and
// which required categories (as the policy spells them, in its order) it
// lacks. It reads ev.Context.Consent, which the collector fills from
// context.consent.categoryPreferences (true/false values only).
func (p Policy) Check(ev *eventv1.Event) (ok bool, missing []string) {
	if len(p.Required) == 0 {
		return true, nil
	}
	granted := map[string]bool{}
	denied := map[string]bool{}
	for k, v := range ev.GetContext().GetConsent() {
		if v {
			granted[fold(k)] = true
		} else {
			denied[fold(k)] = true
		}
	}
	for _, c := range p.Required {
		if key := fold(c); !granted[key] || denied[key] {
			missing = append(missing, c)
		}
	}
	return len(missing) == 0, missing
}

// StripPII reduces ev to what a rejection record may keep: type, event name,
// message id, the four timestamps, the library that sent it and the consent
// state. Everything else — ids, traits, properties, context (ip, user agent,
// device and external ids, page URLs, …), integrations, page name and
// category — is cleared.
//
// It keeps by allow-list: a field added to Event or Context later is
// stripped until someone decides it is safe to keep.
func StripPII(ev *eventv1.Event) {
	if ev == nil {
		return
	}
	kept := &eventv1.Event{
		Type:              ev.Type,
		MessageId:         ev.MessageId,
		Event:             ev.Event,
		Timestamp:         ev.Timestamp,
		OriginalTimestamp: ev.OriginalTimestamp,
		SentAt:            ev.SentAt,
		ReceivedAt:        ev.ReceivedAt,
	}
	if c := ev.Context; c != nil && (c.Library != nil || len(c.Consent) > 0) {
		kept.Context = &eventv1.Context{Library: c.Library, Consent: c.Consent}
	}
	kept = proto.Clone(kept).(*eventv1.Event) // own the kept parts before Reset clears them
	proto.Reset(ev)
	proto.Merge(ev, kept)
}

// StripEnvelope strips env for a consent or suppression rejection: the
// event as StripPII does, and the envelope's other copies of personal data —
// the raw bytes the SDK sent, the client IP and user agent the collector
// saw, the resolved profile id and the validation's violations (their
// details may describe values). What routes and traces the message stays:
// schema version, message, workspace and source ids, the collector's
// request id, interface, endpoint and times, the tracking plan's id and
// version. Like StripPII it keeps by allow-list.
func StripEnvelope(env *eventv1.Envelope) {
	if env == nil {
		return
	}
	ev := env.Event
	StripPII(ev)
	kept := &eventv1.Envelope{
		SchemaVersion: env.SchemaVersion,
		MessageId:     env.MessageId,
		WorkspaceId:   env.WorkspaceId,
		SourceId:      env.SourceId,
		Event:         ev,
	}
	if c := env.Collector; c != nil {
		kept.Collector = &eventv1.CollectorMeta{
			ReceivedAt: c.ReceivedAt, SentAt: c.SentAt,
			RequestId: c.RequestId, Api: c.Api, Endpoint: c.Endpoint,
		}
	}
	if v := env.Validation; v != nil {
		kept.Validation = &eventv1.Validation{PlanId: v.PlanId, PlanVersion: v.PlanVersion}
	}
	kept = proto.Clone(kept).(*eventv1.Envelope)
	proto.Reset(env)
	proto.Merge(env, kept)
}
