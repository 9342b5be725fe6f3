package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// trigger is one membership transition as fpctl prints it.
type trigger struct {
	Transition string    `json:"transition"`
	Workspace  string    `json:"workspace_id"`
	Segment    string    `json:"segment_id"`
	Version    uint32    `json:"segment_version"`
	Profile    string    `json:"profile_id"`
	OccurredAt time.Time `json:"occurred_at"`
	ID         string    `json:"membership_id"`
}

// decodeTrigger reads one message of cdp.segments.membership.
func decodeTrigger(value []byte) (trigger, error) {
	var m segmentv1.Membership
	if err := proto.Unmarshal(value, &m); err != nil {
		return trigger{}, fmt.Errorf("decoding membership: %w", err)
	}
	tr := "exit"
	if m.GetTransition() == segmentv1.Transition_TRANSITION_ENTER {
		tr = "enter"
	}
	return trigger{Transition: tr, Workspace: m.GetWorkspaceId(), Segment: m.GetSegmentId(), Version: m.GetSegmentVersion(),
		Profile: m.GetProfileId(), OccurredAt: m.GetOccurredAt().AsTime().UTC(), ID: m.GetMembershipId()}, nil
}

func (t trigger) line() string {
	return fmt.Sprintf("%s %-5s %s/%s v%d profile %s", t.OccurredAt.Format(time.RFC3339), t.Transition, t.Workspace, t.Segment, t.Version, t.Profile)
}

// tail prints transitions until ctx ends, from now on (or from the
// beginning), in a consumer group of its own that commits nothing.
func tail(ctx context.Context, c command, out io.Writer) error {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	start := kafka.LastOffset
	if c.fromBeginning {
		start = kafka.FirstOffset
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: strings.Split(c.brokers, ","), GroupID: "fpctl-tail-" + hex.EncodeToString(b), GroupTopics: []string{c.topic},
		StartOffset: start, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
		Dialer: &kafka.Dialer{ClientID: "fpctl", Timeout: 10 * time.Second, DualStack: true},
	})
	defer r.Close()
	enc := json.NewEncoder(out)
	for {
		m, err := r.FetchMessage(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return &unreachable{fmt.Errorf("reading %s from %s: %w", c.topic, c.brokers, err)}
		}
		t, err := decodeTrigger(m.Value)
		if err != nil {
			fmt.Fprintf(out, "# offset %d/%d: %v\n", m.Partition, m.Offset, err)
			continue
		}
		if c.workspace != "" && t.Workspace != c.workspace {
			continue
		}
		if c.json {
			_ = enc.Encode(t)
		} else {
			fmt.Fprintln(out, t.line())
		}
	}
}
