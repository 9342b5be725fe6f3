package standardize

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/jsonedit"
	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

// Options configure the rules for one source.
type Options struct {
	// DefaultRegion is the ISO 3166-1 alpha-2 region ("DE") a phone number
	// without a +country code is read in. Empty: such numbers are reported.
	DefaultRegion string
}

// Validate reports an unsupported region, naming the field.
func (o Options) Validate() error {
	if o.DefaultRegion == "" {
		return nil
	}
	if !phonenumbers.GetSupportedRegions()[strings.ToUpper(o.DefaultRegion)] {
		return fmt.Errorf("DefaultRegion %q is not an ISO 3166-1 alpha-2 region with a phone numbering plan (e.g. \"DE\", \"US\")", o.DefaultRegion)
	}
	return nil
}

// Event standardizes ev in place and returns what it could not fix.
func Event(ev *eventv1.Event, opt Options) []*eventv1.Violation {
	if ev == nil {
		return nil
	}
	s := standardizer{region: strings.ToUpper(opt.DefaultRegion)}
	s.ids(ev)
	s.timestamps(ev)

	traits := userTraits
	if ev.Type == eventv1.EventType_EVENT_TYPE_GROUP {
		traits = groupTraits
	}
	if out, changed := s.object(ev.TraitsJson, traits, "/traits"); changed {
		ev.TraitsJson = out
	}
	if out, changed := s.contextTraits(ev.ContextJson); changed {
		ev.ContextJson = out
	}
	return s.violations
}

type standardizer struct {
	region     string
	violations []*eventv1.Violation
}

func (s *standardizer) report(field, rule, format string, args ...any) {
	s.violations = append(s.violations, &eventv1.Violation{
		Reason: eventv1.Reason_REASON_FORMAT_VIOLATION,
		Field:  field,
		Rule:   rule,
		Detail: fmt.Sprintf(format, args...),
	})
}

func (s *standardizer) ids(ev *eventv1.Event) {
	trim := func(p *string) (emptied bool) {
		t := strings.TrimFunc(*p, isTrimmable)
		emptied = t == "" && *p != ""
		*p = t
		return emptied
	}
	userEmptied := trim(&ev.UserId)
	anonEmptied := trim(&ev.AnonymousId)
	if (userEmptied || anonEmptied) && ev.UserId == "" && ev.AnonymousId == "" {
		s.report("/userId", "required", "userId and anonymousId are empty after trimming white space; one of them is required")
	}
	if trim(&ev.Event) && ev.Type == eventv1.EventType_EVENT_TYPE_TRACK {
		s.report("/event", "required", "the event name is only white space; a track call needs a name")
	}
	if trim(&ev.GroupId) && ev.Type == eventv1.EventType_EVENT_TYPE_GROUP {
		s.report("/groupId", "required", "groupId is only white space; a group call needs one")
	}
	if trim(&ev.PreviousId) && ev.Type == eventv1.EventType_EVENT_TYPE_ALIAS {
		s.report("/previousId", "required", "previousId is only white space; an alias call needs one")
	}
}

func isTrimmable(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\ufeff'
}

func (s *standardizer) timestamps(ev *eventv1.Event) {
	for _, f := range []struct {
		ts    *timestamppb.Timestamp
		field string
	}{
		{ev.Timestamp, "/timestamp"},
		{ev.OriginalTimestamp, "/originalTimestamp"},
		{ev.SentAt, "/sentAt"},
		{ev.ReceivedAt, "/receivedAt"},
	} {
		if f.ts == nil {
			continue
		}
		if err := f.ts.CheckValid(); err != nil {
			s.report(f.field, "timestamp", "%v", err)
			continue
		}
		f.ts.Nanos -= f.ts.Nanos % 1e6
	}
}

// contextTraits standardizes context.traits, which carries user traits on
// every call (analytics.js copies the identify traits there).
func (s *standardizer) contextTraits(ctx []byte) ([]byte, bool) {
	if len(ctx) == 0 || jsonedit.IsNull(ctx) {
		return ctx, false
	}
	o, err := jsonedit.ParseObject(ctx)
	if err != nil {
		s.report("/context", "json", "context is not a JSON object: %v", err)
		return ctx, false
	}
	changed := false
	for i := range o.Members {
		m := &o.Members[i]
		if m.Key != "traits" || jsonedit.KindOf(m.Value) != jsonedit.ObjectKind {
			continue
		}
		if out, ok := s.object(m.Value, userTraits, "/context/traits"); ok {
			m.Value = out
			changed = true
		}
	}
	if !changed {
		return ctx, false
	}
	return o.AppendTo(make([]byte, 0, len(ctx)+16)), true
}

// object applies a trait table to one JSON object: renames, then the value
// rules of the canonical members.
func (s *standardizer) object(doc []byte, t *table, pointer string) ([]byte, bool) {
	if len(doc) == 0 || jsonedit.IsNull(doc) {
		return doc, false
	}
	o, err := jsonedit.ParseObject(doc)
	if err != nil {
		s.report(pointer, "json", "%s is not a JSON object: %v", pointer[1:], err)
		return doc, false
	}
	changed := t.rename(o)
	for i := range o.Members {
		m := &o.Members[i]
		rule, ok := t.rules[m.Key]
		if !ok {
			continue
		}
		if out, ok := rule(s, m.Value, pointer+"/"+escapePointer(m.Key)); ok {
			m.Value = out
			changed = true
		}
	}
	if !changed {
		return doc, false
	}
	return o.AppendTo(make([]byte, 0, len(doc)+16)), true
}

// escapePointer escapes a key for a JSON pointer (RFC 6901).
func escapePointer(key string) string {
	if !strings.ContainsAny(key, "~/") {
		return key
	}
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}
