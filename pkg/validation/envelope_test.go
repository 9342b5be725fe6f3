package validation

import (
	"testing"

	"google.golang.org/protobuf/proto"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

func TestDecodeEnvelope(t *testing.T) {
	good := func() *eventv1.Envelope {
		return &eventv1.Envelope{
			SchemaVersion: 1, MessageId: "m1", WorkspaceId: "ws", SourceId: "src",
			Event: &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: "Signed Up", AnonymousId: "a1"},
		}
	}
	tests := []struct {
		name   string
		value  func() []byte
		fields []string // JSON pointers of the expected violations
	}{
		{"valid", func() []byte { b, _ := proto.Marshal(good()); return b }, nil},
		{"not protobuf", func() []byte { return []byte{0xff, 0xff, 0xff} }, []string{""}},
		{"no ids", func() []byte {
			e := good()
			e.Event.AnonymousId = ""
			b, _ := proto.Marshal(e)
			return b
		}, []string{"/userId"}},
		{"no message id or workspace", func() []byte {
			e := good()
			e.MessageId, e.WorkspaceId = "", ""
			b, _ := proto.Marshal(e)
			return b
		}, []string{"/messageId", "/workspace_id"}},
		{"no event", func() []byte {
			e := good()
			e.Event = nil
			b, _ := proto.Marshal(e)
			return b
		}, []string{"/event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, vs := DecodeEnvelope(tt.value())
			if len(vs) != len(tt.fields) {
				t.Fatalf("violations = %v, want fields %v", vs, tt.fields)
			}
			for i, v := range vs {
				if v.Field != tt.fields[i] || v.Reason != eventv1.Reason_REASON_FORMAT_VIOLATION || v.Detail == "" {
					t.Errorf("violation %d = %v, want field %q", i, v, tt.fields[i])
				}
			}
		})
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	b, _ := proto.Marshal(&eventv1.Envelope{MessageId: "m", WorkspaceId: "w", SourceId: "s", Event: &eventv1.Event{Type: 1, UserId: "u"}})
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, value []byte) {
		env, vs := DecodeEnvelope(value)
		if env == nil && len(vs) == 0 {
			t.Fatal("neither an envelope nor a reason")
		}
	})
}
