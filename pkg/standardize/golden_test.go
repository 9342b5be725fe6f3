package standardize

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/firstparty/firstparty/proto/event/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// checkGolden compares got (JSON) with testdata/name, indented for diffs.
// Run `go test -update` to accept a deliberate change.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, buf.Bytes(), want)
	}
}

// goldenEvent is a readable stand-in for eventv1.Event: typed fields as
// JSON, free-form objects as their exact text.
type goldenEvent struct {
	Type              string          `json:"type"`
	MessageID         string          `json:"messageId,omitempty"`
	UserID            string          `json:"userId,omitempty"`
	AnonymousID       string          `json:"anonymousId,omitempty"`
	Event             string          `json:"event,omitempty"`
	GroupID           string          `json:"groupId,omitempty"`
	PreviousID        string          `json:"previousId,omitempty"`
	Timestamp         string          `json:"timestamp,omitempty"`
	OriginalTimestamp string          `json:"originalTimestamp,omitempty"`
	SentAt            string          `json:"sentAt,omitempty"`
	ReceivedAt        string          `json:"receivedAt,omitempty"`
	Traits            json.RawMessage `json:"traits,omitempty"`
	Properties        json.RawMessage `json:"properties,omitempty"`
	Context           json.RawMessage `json:"context,omitempty"`
}

type goldenViolation struct {
	Field  string `json:"field"`
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
}

func (g goldenEvent) toProto(t *testing.T) *eventv1.Event {
	ts := func(s string) *timestamppb.Timestamp {
		if s == "" {
			return nil
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(tm)
	}
	return &eventv1.Event{
		Type:      eventv1.EventType(eventv1.EventType_value["EVENT_TYPE_"+strings.ToUpper(g.Type)]),
		MessageId: g.MessageID, UserId: g.UserID, AnonymousId: g.AnonymousID, Event: g.Event,
		GroupId: g.GroupID, PreviousId: g.PreviousID,
		Timestamp: ts(g.Timestamp), OriginalTimestamp: ts(g.OriginalTimestamp), SentAt: ts(g.SentAt), ReceivedAt: ts(g.ReceivedAt),
		TraitsJson: g.Traits, PropertiesJson: g.Properties, ContextJson: g.Context,
	}
}

func fromProto(ev *eventv1.Event) goldenEvent {
	ts := func(p *timestamppb.Timestamp) string {
		if p == nil {
			return ""
		}
		return p.AsTime().Format(time.RFC3339Nano)
	}
	raw := func(b []byte) json.RawMessage {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	return goldenEvent{
		Type:      strings.ToLower(strings.TrimPrefix(ev.Type.String(), "EVENT_TYPE_")),
		MessageID: ev.MessageId, UserID: ev.UserId, AnonymousID: ev.AnonymousId, Event: ev.Event,
		GroupID: ev.GroupId, PreviousID: ev.PreviousId,
		Timestamp: ts(ev.Timestamp), OriginalTimestamp: ts(ev.OriginalTimestamp), SentAt: ts(ev.SentAt), ReceivedAt: ts(ev.ReceivedAt),
		Traits: raw(ev.TraitsJson), Properties: raw(ev.PropertiesJson), Context: raw(ev.ContextJson),
	}
}

// TestGolden runs every testdata/NAME.input.json ({"options", "event"})
// through Event and compares the event and violations with NAME.golden.json.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var input struct {
				Options struct {
					DefaultRegion string `json:"defaultRegion"`
				} `json:"options"`
				Event goldenEvent `json:"event"`
			}
			if err := json.Unmarshal(b, &input); err != nil {
				t.Fatal(err)
			}
			ev := input.Event.toProto(t)
			vs := Event(ev, Options{DefaultRegion: input.Options.DefaultRegion})
			out := struct {
				Event      goldenEvent       `json:"event"`
				Violations []goldenViolation `json:"violations"`
			}{Event: fromProto(ev), Violations: []goldenViolation{}}
			for _, v := range vs {
				out.Violations = append(out.Violations, goldenViolation{v.Field, v.Rule, v.Detail})
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(out); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, name+".golden.json", bytes.TrimSpace(buf.Bytes()))
		})
	}
}
