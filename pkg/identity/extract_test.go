package identity

import (
	"testing"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

func TestIdentifiers(t *testing.T) {
	tests := []struct {
		name string
		ev   *eventv1.Event
		want string
	}{
		{"identify with traits, most trusted first", &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, AnonymousId: "a1", UserId: "u1",
			TraitsJson: []byte(`{"email":"ann@x.io","phone":"+4915123456789"}`),
			Context:    &eventv1.Context{ExternalIds: []*eventv1.ExternalID{{Id: "c-9", Type: "CRM_ID"}}}},
			"user_id:u1 email:ann@x.io phone:+4915123456789 crm_id:c-9 anonymous_id:a1"},
		{"blocked placeholder values", &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, AnonymousId: "undefined", UserId: "null",
			ContextJson: []byte(`{"traits":{"email":"Anonymous"}}`)}, ""},
		{"alias previousId", &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_ALIAS, UserId: "u1", PreviousId: "a1"}, "user_id:u1 previous_id:a1"},
		{"track traits are not identity claims, context.traits are", &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "u1",
			TraitsJson: []byte(`{"email":"x@y.z"}`), ContextJson: []byte(`{"traits":{"email":"ann@x.io"}}`)}, "user_id:u1 email:ann@x.io"},
		{"same id twice", &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, UserId: "u1", AnonymousId: "u1"}, "user_id:u1 anonymous_id:u1"},
	}
	for _, tt := range tests {
		got := ""
		for i, id := range Identifiers(tt.ev) {
			if i > 0 {
				got += " "
			}
			got += id.String()
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTraitsAndCounter(t *testing.T) {
	ev := &eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_IDENTIFY, TraitsJson: []byte(`{"plan":"pro","n":12345678901234567890,"a":{"b":1}}`)}
	tr := Traits(ev)
	if string(tr["plan"]) != `"pro"` || string(tr["n"]) != `12345678901234567890` || string(tr["a"]) != `{"b":1}` {
		t.Fatalf("traits = %v", tr)
	}
	if Counter(&eventv1.Event{Type: eventv1.EventType_EVENT_TYPE_TRACK, Event: "Order Completed"}) != "track:Order Completed" {
		t.Fatal("counter name")
	}
}
