package validation

import (
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/standardize"
	"github.com/firstparty/firstparty/pkg/suppression"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// The validator's decision is split around its two lookups in Redis (the
// dedup window and the suppression list), which are made for a whole batch
// at once:
//
//	Prepare (pure) → dedup.Seen + suppression.Check (I/O, batched) → Decide (pure)
//
// Rules, in order: undecodable → format_violation; identifiers standardized
// (emails lower-cased, phones E.164) so suppression matches every spelling;
// suppressed identifier → suppressed; consent missing or denied →
// consent_denied (both stripped of PII, fail closed); message id already
// seen → duplicate; tracking plan says block → schema_violation / unplanned;
// else valid, tagged with the plan's tolerated violations and cleaning
// issues, with the source's PII rules applied.

// Prepared is one raw message decoded and cleaned, waiting for the lookups.
type Prepared struct {
	Env    *eventv1.Envelope
	Source *sources.Resolved // nil when the source is not (or no longer) configured
	// Identifiers to check against the suppression list.
	Identifiers []suppression.Identifier
	// Cleaning issues standardization could not fix (tagged, not rejected).
	Cleaning []*eventv1.Violation
	// Format is set when the message is unusable; Decide rejects it.
	Format []*eventv1.Violation
}

// Prepare decodes a raw-topic message and standardizes its event.
func Prepare(value []byte, reg *sources.Registry) Prepared {
	env, vs := DecodeEnvelope(value)
	if len(vs) > 0 {
		if env == nil {
			env = &eventv1.Envelope{Raw: value}
		}
		return Prepared{Env: env, Format: vs}
	}
	p := Prepared{Env: env}
	p.Source, _ = reg.Source(env.WorkspaceId, env.SourceId)
	opts := standardize.Options{}
	if p.Source != nil {
		opts = p.Source.Standardize
	}
	for _, v := range standardize.Event(env.Event, opts) {
		if v.Rule == "required" { // trimming emptied an identifier the call needs
			p.Format = append(p.Format, v)
		} else {
			p.Cleaning = append(p.Cleaning, v)
		}
	}
	p.Identifiers = identifiers(env.Event)
	return p
}

// identifiers lists the typed identifiers an event carries.
func identifiers(ev *eventv1.Event) []suppression.Identifier {
	var ids []suppression.Identifier
	add := func(typ, v string) {
		if v != "" {
			ids = append(ids, suppression.Identifier{Type: typ, Value: v})
		}
	}
	add("user_id", ev.UserId)
	add("anonymous_id", ev.AnonymousId)
	if ev.Type == eventv1.EventType_EVENT_TYPE_ALIAS {
		add("user_id", ev.PreviousId)
		add("anonymous_id", ev.PreviousId)
	}
	for _, doc := range [][]byte{ev.TraitsJson, contextTraits(ev.ContextJson)} {
		if len(doc) == 0 {
			continue
		}
		v, err := fastjson.ParseBytes(doc)
		if err != nil {
			continue
		}
		add("email", string(v.GetStringBytes("email")))
		add("phone", string(v.GetStringBytes("phone")))
	}
	for _, x := range ev.GetContext().GetExternalIds() {
		add(x.Type, x.Id)
	}
	return ids
}

func contextTraits(ctx []byte) []byte {
	if len(ctx) == 0 {
		return nil
	}
	v, err := fastjson.ParseBytes(ctx)
	if err != nil {
		return nil
	}
	t := v.Get("traits")
	if t == nil || t.Type() != fastjson.TypeObject {
		return nil
	}
	return t.MarshalTo(nil)
}

// Lookup is what the batched Redis lookups found for one prepared message.
type Lookup struct {
	// SeenOrigin is the origin of an earlier delivery of the same message id
	// ("" when none); Origin is this delivery's.
	SeenOrigin, Origin string
	Suppressed         bool
}

// Outcome is the decision for one message.
type Outcome int

const (
	Valid Outcome = iota
	Rejected
	// Redelivered: Kafka delivered this very message again after its
	// outputs were produced; nothing is produced a second time.
	Redelivered
)

// Decision is what to produce for one message.
type Decision struct {
	Outcome   Outcome
	Valid     *eventv1.Envelope  // Outcome == Valid
	Rejection *eventv1.Rejection // Outcome == Rejected
}

// Reason is the metric label of a decision: "valid", "redelivered", or the
// rejection reason ("schema_violation", …).
func (d Decision) Reason() string {
	switch d.Outcome {
	case Valid:
		return "valid"
	case Redelivered:
		return "redelivered"
	}
	return ReasonName(d.Rejection.Violations[0].Reason)
}

// ReasonName is the short name of a reason: REASON_CONSENT_DENIED → consent_denied.
func ReasonName(r eventv1.Reason) string {
	return strings.TrimPrefix(strings.ToLower(r.String()), "reason_")
}

// Decide applies the rules to a prepared message and its lookups.
func Decide(p Prepared, l Lookup, now time.Time) Decision {
	reject := func(vs ...*eventv1.Violation) Decision {
		return Decision{Outcome: Rejected, Rejection: &eventv1.Rejection{
			Envelope: p.Env, Stage: "validator", Violations: vs, RejectedAt: timestamppb.New(now),
		}}
	}
	stripped := func(reason eventv1.Reason, detail string) Decision {
		consent.StripEnvelope(p.Env)
		return reject(&eventv1.Violation{Reason: reason, Detail: detail})
	}
	if len(p.Format) > 0 {
		return reject(p.Format...)
	}
	if l.Suppressed {
		return stripped(eventv1.Reason_REASON_SUPPRESSED, "an identifier of this event belongs to an erased person")
	}
	if p.Source != nil {
		if ok, missing := p.Source.Consent.Check(p.Env.Event); !ok {
			return stripped(eventv1.Reason_REASON_CONSENT_DENIED,
				fmt.Sprintf("consent required for %s is missing or denied in context.consent.categoryPreferences", strings.Join(missing, ", ")))
		}
	}
	if l.SeenOrigin != "" {
		if l.SeenOrigin == l.Origin {
			return Decision{Outcome: Redelivered}
		}
		return reject(&eventv1.Violation{Reason: eventv1.Reason_REASON_DUPLICATE, Field: "/messageId", Rule: "unique",
			Detail: fmt.Sprintf("message id %q was already accepted from this source within the dedup window", p.Env.MessageId)})
	}
	val := &eventv1.Validation{Violations: p.Cleaning}
	if p.Source != nil && p.Source.Plan != nil {
		plan := p.Source.Plan
		val.PlanId, val.PlanVersion = plan.ID, plan.Version
		res := plan.Check(p.Env.Event)
		if res.Block {
			return reject(res.Violations...)
		}
		val.Violations = append(val.Violations, res.Violations...)
	}
	if p.Source != nil && len(p.Source.PII.Rules) > 0 {
		changed := p.Source.PII.Apply(p.Env.Event, p.Source.PIISecret)
		if len(changed) > 0 {
			// The raw bytes and the collector's copies would still hold
			// what the policy just removed.
			p.Env.Raw = nil
			if c := p.Env.Collector; c != nil {
				for _, path := range changed {
					switch path {
					case "context.ip":
						c.Ip = p.Env.Event.GetContext().GetIp()
					case "context.userAgent":
						c.UserAgent = p.Env.Event.GetContext().GetUserAgent()
					}
				}
			}
		}
	}
	if len(val.Violations) > 0 || val.PlanId != "" {
		p.Env.Validation = val
	}
	return Decision{Outcome: Valid, Valid: p.Env}
}
