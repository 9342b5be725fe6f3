// Package validation decides whether an event from cdp.events.raw may go on
// to cdp.events.valid, and if not, why. It is the validator's pure core: no
// I/O, so every rule is table-tested.
package validation

import (
	"fmt"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// DecodeEnvelope parses a raw-topic message and checks the fields every later
// stage relies on. It returns the envelope, or the violations that make the
// message unusable (routed to the dead-letter topic as format_violation).
func DecodeEnvelope(value []byte) (*eventv1.Envelope, []*eventv1.Violation) {
	env := &eventv1.Envelope{}
	if err := env.UnmarshalVT(value); err != nil {
		return nil, []*eventv1.Violation{{
			Reason: eventv1.Reason_REASON_FORMAT_VIOLATION, Rule: "protobuf",
			Detail: fmt.Sprintf("not a firstparty.event.v1.Envelope: %v", err),
		}}
	}
	var vs []*eventv1.Violation
	missing := func(field, what string) {
		vs = append(vs, &eventv1.Violation{Reason: eventv1.Reason_REASON_FORMAT_VIOLATION, Field: field, Rule: "required", Detail: what + " is missing"})
	}
	if env.GetMessageId() == "" {
		missing("/messageId", "message id")
	}
	if env.GetWorkspaceId() == "" {
		missing("/workspace_id", "workspace id")
	}
	if env.GetSourceId() == "" {
		missing("/source_id", "source id")
	}
	if env.GetEvent() == nil {
		missing("/event", "normalized event")
	} else {
		if env.GetEvent().GetType() == eventv1.EventType_EVENT_TYPE_UNSPECIFIED {
			missing("/type", "event type")
		}
		if env.GetEvent().GetAnonymousId() == "" && env.GetEvent().GetUserId() == "" {
			vs = append(vs, &eventv1.Violation{Reason: eventv1.Reason_REASON_FORMAT_VIOLATION, Field: "/userId", Rule: "required",
				Detail: "either userId or anonymousId is required"})
		}
	}
	if len(vs) > 0 {
		return env, vs
	}
	return env, nil
}
