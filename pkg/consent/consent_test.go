package consent

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

func TestCheck(t *testing.T) {
	withConsent := func(c map[string]bool) *eventv1.Event {
		return &eventv1.Event{Context: &eventv1.Context{Consent: c}}
	}
	tests := []struct {
		name     string
		required []string
		ev       *eventv1.Event
		ok       bool
		missing  []string
	}{
		{"no requirement", nil, &eventv1.Event{}, true, nil},
		{"no requirement, nil event", nil, nil, true, nil},
		{"granted", []string{"analytics"}, withConsent(map[string]bool{"analytics": true, "ads": false}), true, nil},
		{"case-insensitive both ways", []string{"Analytics", "ADVERTISING"}, withConsent(map[string]bool{"ANALYTICS": true, "advertising": true}), true, nil},
		{"surrounding space ignored", []string{" analytics "}, withConsent(map[string]bool{"analytics ": true}), true, nil},
		{"false is missing", []string{"analytics"}, withConsent(map[string]bool{"analytics": false}), false, []string{"analytics"}},
		{"absent is missing", []string{"analytics", "personalization"}, withConsent(map[string]bool{"analytics": true}), false, []string{"personalization"}},
		{"disagreeing spellings fail closed", []string{"analytics"}, withConsent(map[string]bool{"Analytics": true, "analytics": false}), false, []string{"analytics"}},
		{"missing in policy order and spelling", []string{"Marketing", "analytics"}, withConsent(nil), false, []string{"Marketing", "analytics"}},
		{"no context", []string{"analytics"}, &eventv1.Event{}, false, []string{"analytics"}},
		{"nil event", []string{"analytics"}, nil, false, []string{"analytics"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, missing := Policy{Required: tt.required}.Check(tt.ev)
			if ok != tt.ok || strings.Join(missing, ",") != strings.Join(tt.missing, ",") {
				t.Errorf("Check = %v, %q; want %v, %q", ok, missing, tt.ok, tt.missing)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		required []string
		err      string
	}{
		{nil, ""},
		{[]string{"analytics", "advertising"}, ""},
		{[]string{"analytics", " "}, "Required[1] is empty"},
		{[]string{"analytics", "ads", "Analytics"}, "Required[2] \"Analytics\" repeats Required[0]"},
	}
	for _, tt := range tests {
		err := Policy{Required: tt.required}.Validate()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%q: error %v, want %q", tt.required, err, tt.err)
		}
	}
}

func fullEvent() *eventv1.Event {
	at := timestamppb.New(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	return &eventv1.Event{
		Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: "m1", AnonymousId: "a1", UserId: "u1",
		Event: "Order Completed", Name: "Checkout", Category: "Shop", GroupId: "g1", PreviousId: "p1",
		Timestamp: at, OriginalTimestamp: at, SentAt: at, ReceivedAt: at,
		Context: &eventv1.Context{
			Ip: "203.0.113.7", UserAgent: "Mozilla/5.0", Locale: "de-DE", Timezone: "Europe/Berlin",
			Library:     &eventv1.Library{Name: "analytics.js", Version: "2.11.1"},
			Page:        &eventv1.Page{Url: "https://x.io/?email=a@x.io"},
			Campaign:    &eventv1.Campaign{Name: "spring"},
			Device:      &eventv1.Device{Id: "dev-1", AdvertisingId: "ad-1"},
			Os:          &eventv1.OS{Name: "Linux"},
			App:         &eventv1.App{Name: "shop"},
			Screen:      &eventv1.Screen{Width: 1920},
			Consent:     map[string]bool{"analytics": false, "advertising": true},
			ExternalIds: []*eventv1.ExternalID{{Id: "a@x.io", Type: "email"}},
			GroupId:     "g1",
		},
		PropertiesJson:   []byte(`{"email":"a@x.io"}`),
		TraitsJson:       []byte(`{"email":"a@x.io"}`),
		ContextJson:      []byte(`{"ip":"203.0.113.7"}`),
		IntegrationsJson: []byte(`{"All":true}`),
	}
}

func TestStripPII(t *testing.T) {
	ev := fullEvent()
	orig := proto.Clone(ev).(*eventv1.Event)
	StripPII(ev)
	at := orig.Timestamp
	want := &eventv1.Event{
		Type: eventv1.EventType_EVENT_TYPE_TRACK, MessageId: "m1", Event: "Order Completed",
		Timestamp: at, OriginalTimestamp: at, SentAt: at, ReceivedAt: at,
		Context: &eventv1.Context{
			Library: &eventv1.Library{Name: "analytics.js", Version: "2.11.1"},
			Consent: map[string]bool{"analytics": false, "advertising": true},
		},
	}
	if !proto.Equal(ev, want) {
		t.Errorf("stripped\n got %v\nwant %v", ev, want)
	}

	StripPII(nil)
	bare := &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, UserId: "u", Context: &eventv1.Context{Ip: "1.2.3.4"}}
	StripPII(bare)
	if bare.Context != nil || bare.UserId != "" {
		t.Errorf("a context with nothing to keep goes: %v", bare)
	}
}

// kept is the allow-list StripPII implements, by proto field name.
var kept = map[string]bool{
	"firstparty.event.v1.Event.type": true, "firstparty.event.v1.Event.message_id": true, "firstparty.event.v1.Event.event": true,
	"firstparty.event.v1.Event.timestamp": true, "firstparty.event.v1.Event.original_timestamp": true,
	"firstparty.event.v1.Event.sent_at": true, "firstparty.event.v1.Event.received_at": true,
	"firstparty.event.v1.Event.context": true, "firstparty.event.v1.Context.library": true, "firstparty.event.v1.Context.consent": true,
}

var keptEnvelope = map[string]bool{
	"firstparty.event.v1.Envelope.schema_version": true, "firstparty.event.v1.Envelope.message_id": true,
	"firstparty.event.v1.Envelope.workspace_id": true, "firstparty.event.v1.Envelope.source_id": true,
	"firstparty.event.v1.Envelope.event": true, "firstparty.event.v1.Envelope.collector": true, "firstparty.event.v1.Envelope.validation": true,
	"firstparty.event.v1.CollectorMeta.received_at": true, "firstparty.event.v1.CollectorMeta.sent_at": true,
	"firstparty.event.v1.CollectorMeta.request_id": true, "firstparty.event.v1.CollectorMeta.api": true, "firstparty.event.v1.CollectorMeta.endpoint": true,
	"firstparty.event.v1.Validation.plan_id": true, "firstparty.event.v1.Validation.plan_version": true,
}

func TestStripEnvelopeEveryField(t *testing.T) {
	env := &eventv1.Envelope{}
	fill(env.ProtoReflect())
	StripEnvelope(env)
	env.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !keptEnvelope[string(fd.FullName())] {
			t.Errorf("%s survived StripEnvelope", fd.FullName())
		}
		if fd.Message() != nil && (fd.Message().FullName() == "firstparty.event.v1.CollectorMeta" || fd.Message().FullName() == "firstparty.event.v1.Validation") {
			v.Message().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
				if !keptEnvelope[string(fd.FullName())] {
					t.Errorf("%s survived StripEnvelope", fd.FullName())
				}
				return true
			})
		}
		return true
	})
	if env.Event.GetUserId() != "" || env.Event.GetMessageId() == "" {
		t.Errorf("event not stripped: %v", env.Event)
	}
}

// TestStripPIIEveryField sets every field of Event and Context, including
// ones added after this test was written, and checks that only the
// allow-list survives.
func TestStripPIIEveryField(t *testing.T) {
	ev := &eventv1.Event{}
	fill(ev.ProtoReflect())
	StripPII(ev)
	var check func(m protoreflect.Message)
	check = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			name := string(fd.FullName())
			if !kept[name] {
				t.Errorf("%s survived StripPII", name)
			}
			if fd.Message() != nil && !fd.IsMap() && !fd.IsList() && fd.Message().FullName() == "firstparty.event.v1.Context" {
				check(v.Message())
			}
			return true
		})
	}
	check(ev.ProtoReflect())
	if ev.Context == nil || ev.Context.Library == nil || len(ev.Context.Consent) == 0 || ev.MessageId == "" {
		t.Errorf("allow-listed fields were lost: %v", ev)
	}
}

// fill sets every scalar, message, list and map field of m (messages of the
// event package recursively) to a non-zero value.
func fill(m protoreflect.Message) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			mp.Set(protoreflect.ValueOfString("k").MapKey(), scalar(fd.MapValue()))
		case fd.IsList():
			l := m.Mutable(fd).List()
			if fd.Message() != nil {
				e := l.NewElement()
				fill(e.Message())
				l.Append(e)
			} else {
				l.Append(scalar(fd))
			}
		case fd.Message() != nil:
			if fd.Message().FullName() == "google.protobuf.Timestamp" {
				m.Set(fd, protoreflect.ValueOfMessage(timestamppb.Now().ProtoReflect()))
				continue
			}
			fill(m.Mutable(fd).Message())
		default:
			m.Set(fd, scalar(fd))
		}
	}
}

func scalar(fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("x")
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte("{}"))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(1)
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(1)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(1)
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32(1)
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(1)
	}
	panic("fill: add a value for " + fd.Kind().String())
}

func TestStripEnvelope(t *testing.T) {
	env := &eventv1.Envelope{
		SchemaVersion: 1, MessageId: "m1", WorkspaceId: "ws", SourceId: "src",
		Collector: &eventv1.CollectorMeta{Ip: "203.0.113.7", UserAgent: "Mozilla/5.0", RequestId: "r1", Api: "http", Endpoint: "/v1/track"},
		Raw:       []byte(`{"userId":"u1","traits":{"email":"a@x.io"}}`),
		Event:     fullEvent(),
		Validation: &eventv1.Validation{PlanId: "plan-1", PlanVersion: 3,
			Violations: []*eventv1.Violation{{Field: "/properties/email", Detail: "expected a@x.io"}}},
		Resolution: &eventv1.Resolution{ProfileId: "p-1"},
	}
	StripEnvelope(env)
	if env.Raw != nil || env.Collector.Ip != "" || env.Collector.UserAgent != "" || env.Resolution != nil || env.Validation.Violations != nil || env.Event.Context.Ip != "" {
		t.Errorf("personal data left in the envelope: %v", env)
	}
	if env.MessageId != "m1" || env.WorkspaceId != "ws" || env.SourceId != "src" || env.Collector.RequestId != "r1" ||
		env.Validation.PlanId != "plan-1" || env.Event.UserId != "" || env.Event.MessageId != "m1" {
		t.Errorf("routing and tracing ids must stay: %v", env)
	}
	StripEnvelope(nil)
}
