package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/firstparty/firstparty/pkg/topics"
	segmentv1 "github.com/firstparty/firstparty/proto/segment/v1"
)

// Trigger is one segment transition the segmenter published.
type Trigger struct {
	Segment string
	Enter   bool
	Profile string
	// After is how long after the demo's start it arrived here.
	After time.Duration
	// Latency is from the event (or due timer) that caused it to its
	// evaluation.
	Latency time.Duration
	// Timer is true for a time-driven transition (absence, inactivity),
	// which a due timer caused rather than an event.
	Timer bool
}

// decodeTrigger reads one cdp.segments.membership message; ok is false
// for another workspace's.
func decodeTrigger(value []byte, workspace string, start, at time.Time) (t Trigger, ok bool, err error) {
	m := &segmentv1.Membership{}
	if err := proto.Unmarshal(value, m); err != nil {
		return t, false, fmt.Errorf("decoding membership: %w", err)
	}
	if m.GetWorkspaceId() != workspace {
		return t, false, nil
	}
	t = Trigger{
		Segment: m.GetSegmentId(),
		Enter:   m.GetTransition() == segmentv1.Transition_TRANSITION_ENTER,
		Profile: m.GetProfileId(),
		After:   at.Sub(start),
		// The segmenter names the input as the cause: "tick/timer/…"
		// for a due timer (services/segmenter/timers.go).
		Timer: strings.HasPrefix(m.GetCauseId(), "tick/timer/"),
	}
	if m.GetOccurredAt() != nil && m.GetEvaluatedAt() != nil {
		t.Latency = m.GetEvaluatedAt().AsTime().Sub(m.GetOccurredAt().AsTime())
	}
	return t, true, nil
}

// Triggers collects what the watcher saw, for the view.
type Triggers struct {
	mu      sync.Mutex
	recent  []Trigger // newest last, at most keep
	keep    int
	total   int
	timers  int
	first   time.Duration // After of the first one; 0 before it
	bySeg   map[string]*SegmentCount
	lastErr error
}

// SegmentCount is the enters and exits seen of one segment.
type SegmentCount struct{ Enter, Exit int }

func newTriggers(keep int) *Triggers {
	return &Triggers{keep: keep, bySeg: map[string]*SegmentCount{}}
}

func (ts *Triggers) add(t Trigger) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.total == 0 {
		ts.first = max(t.After, time.Nanosecond)
	}
	ts.total++
	if t.Timer {
		ts.timers++
	}
	c := ts.bySeg[t.Segment]
	if c == nil {
		c = &SegmentCount{}
		ts.bySeg[t.Segment] = c
	}
	if t.Enter {
		c.Enter++
	} else {
		c.Exit++
	}
	ts.recent = append(ts.recent, t)
	if len(ts.recent) > ts.keep {
		ts.recent = append(ts.recent[:0], ts.recent[len(ts.recent)-ts.keep:]...)
	}
}

// TriggerSummary is a copy of what was seen so far.
type TriggerSummary struct {
	Total, Timers int
	First         time.Duration // 0: none yet
	Recent        []Trigger     // newest last
	BySegment     map[string]SegmentCount
	Err           error
}

func (ts *Triggers) summary() TriggerSummary {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := TriggerSummary{Total: ts.total, Timers: ts.timers, First: ts.first, Recent: append([]Trigger(nil), ts.recent...),
		BySegment: make(map[string]SegmentCount, len(ts.bySeg)), Err: ts.lastErr}
	for k, v := range ts.bySeg {
		s.BySegment[k] = *v
	}
	return s
}

func (ts *Triggers) fail(err error) {
	ts.mu.Lock()
	ts.lastErr = err
	ts.mu.Unlock()
}

// watcher reads the membership topic from the offsets it had when the
// demo started, one reader a partition (no consumer group: nothing to
// join or commit, and nothing produced after the start is missed).
type watcher struct {
	readers []*kafka.Reader
}

func startWatcher(ctx context.Context, brokers []string) (*watcher, error) {
	topic := topics.Defaults().Membership
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("reading %s metadata: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
		return nil, fmt.Errorf("topic %s not found on %v: is the segmenter running (make up)?", topic, brokers)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("reading %s offsets: %w", topic, err)
	}
	w := &watcher{}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("reading %s[%d] offset: %w", topic, po.Partition, po.Error)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(po.LastOffset); err != nil {
			w.close()
			return nil, fmt.Errorf("seeking %s[%d]: %w", topic, po.Partition, err)
		}
		w.readers = append(w.readers, r)
	}
	return w, nil
}

// run feeds every trigger of workspace into ts until ctx ends.
func (w *watcher) run(ctx context.Context, workspace string, start time.Time, ts *Triggers) {
	var wg sync.WaitGroup
	for _, r := range w.readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
						ts.fail(fmt.Errorf("reading memberships: %w", err))
					}
					return
				}
				t, ok, err := decodeTrigger(m.Value, workspace, start, time.Now())
				if err != nil {
					ts.fail(err)
					continue
				}
				if ok {
					ts.add(t)
				}
			}
		}()
	}
	wg.Wait()
}

func (w *watcher) close() {
	for _, r := range w.readers {
		_ = r.Close()
	}
}
