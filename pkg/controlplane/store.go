package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/firstparty/firstparty/pkg/sources"
)

// Producer writes to Kafka with acks=all (kafkaclient.Producer).
type Producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// ErrNotFound: the workspace does not exist.
var ErrNotFound = errors.New("workspace not found")

// Store writes the config topic and reads it back: a write returns once
// this instance's reader has read it, so the caller's next read sees it.
type Store struct {
	*Reader
	producer Producer
	// mu serialises this instance's writes, so two of its callers never
	// race each other on the topic (they get a conflict before writing).
	mu  sync.Mutex
	now func() time.Time
	// WriteWait bounds the wait for a write to be read back.
	WriteWait time.Duration
}

// NewStore writes through p and reads through r.
func NewStore(r *Reader, p Producer) *Store {
	return &Store{Reader: r, producer: p, now: time.Now, WriteWait: 15 * time.Second}
}

// Check validates the configuration as it would be with ws written and
// deleted removed (a dry run).
func (s *Store) Check(ws []sources.Workspace, deleted ...string) error {
	s.Reader.mu.Lock()
	defer s.Reader.mu.Unlock()
	return s.state.Check(ws, deleted...)
}

// Put writes w as the version after expected (0: create it). It answers a
// *ConflictError when the workspace is not at expected, an *InvalidError
// when the configuration would not build.
func (s *Store) Put(ctx context.Context, w sources.Workspace, expected int64, by string) (Document, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Reader.mu.Lock()
	err := s.state.Expect(w.ID, expected)
	if err == nil {
		err = s.checkVersions(w)
	}
	if err == nil {
		err = s.state.Check([]sources.Workspace{w})
	}
	s.Reader.mu.Unlock()
	if err != nil {
		return Document{}, err
	}
	doc := Document{Workspace: w, Version: expected + 1, UpdatedAt: s.now().UTC().Truncate(time.Millisecond), UpdatedBy: by}
	raw, err := Encode(doc)
	if err != nil {
		return Document{}, err
	}
	if err := checkSize(w.ID, len(raw)); err != nil {
		return Document{}, err
	}
	out, err := s.write(ctx, w.ID, raw)
	if err != nil {
		return Document{}, err
	}
	switch out.Kind {
	case "applied":
		return doc, nil
	case "invalid":
		return doc, &InvalidError{Err: fmt.Errorf("written as version %d, but it does not build with a change written at the same time, so version %d stays in force: %w", doc.Version, expected, out.Err)}
	default:
		return Document{}, out.Err
	}
}

// checkVersions is CheckSegmentVersions against the workspace's latest
// accepted document; the caller holds the reader's lock.
func (s *Store) checkVersions(w sources.Workspace) error {
	var old *sources.Workspace
	if cur, ok := s.state.Latest(w.ID); ok {
		old = &cur.Workspace
	}
	return CheckSegmentVersions(old, w)
}

// Update reads a workspace, changes it with fn and writes it, reading
// again when another write came between (a few times).
func (s *Store) Update(ctx context.Context, ws, by string, fn func(*sources.Workspace) error) (Document, error) {
	for attempt := 0; ; attempt++ {
		cur, ok := s.Get(ws)
		if !ok {
			return Document{}, ErrNotFound
		}
		w, err := clone(cur.Workspace)
		if err != nil {
			return Document{}, err
		}
		if err := fn(&w); err != nil {
			return Document{}, err
		}
		doc, err := s.Put(ctx, w, cur.Version, by)
		if errors.Is(err, ErrConflict) && attempt < 3 {
			continue
		}
		return doc, err
	}
}

// Delete writes the workspace's tombstone; expected < 0 deletes any
// version.
func (s *Store) Delete(ctx context.Context, ws string, expected int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Reader.mu.Lock()
	cur := s.state.Version(ws)
	s.Reader.mu.Unlock()
	if cur == 0 {
		return ErrNotFound
	}
	if expected >= 0 && expected != cur {
		return &ConflictError{Workspace: ws, Expected: expected, Current: cur}
	}
	out, err := s.write(ctx, ws, nil)
	if err != nil {
		return err
	}
	if out.Kind != "deleted" {
		return ErrNotFound
	}
	return nil
}

// write produces one record and waits for this instance's reader to read
// it. A record that lost a version race is followed by the winner's record
// again, so compaction (which keeps the last record of a key) keeps the
// winner.
func (s *Store) write(ctx context.Context, ws string, value []byte) (Outcome, error) {
	rev := newRevision()
	ch := s.wait(rev)
	msg := kafka.Message{Topic: s.topic, Key: []byte(ws), Value: value, Headers: []kafka.Header{{Key: RevisionHeader, Value: []byte(rev)}}}
	if err := s.producer.Produce(ctx, msg); err != nil {
		s.unwait(rev)
		return Outcome{}, fmt.Errorf("writing config topic: %w", err)
	}
	timer := time.NewTimer(s.WriteWait)
	defer timer.Stop()
	var out Outcome
	select {
	case out = <-ch:
	case <-ctx.Done():
		s.unwait(rev)
		return Outcome{}, fmt.Errorf("reading config topic back: %w", ctx.Err())
	case <-timer.C:
		s.unwait(rev)
		return Outcome{}, fmt.Errorf("reading config topic back: the change was written but not read back within %v", s.WriteWait)
	}
	if out.Kind == "stale" {
		s.Reader.mu.Lock()
		winner, ok := s.state.LatestRecord(ws)
		s.Reader.mu.Unlock()
		if ok {
			again := kafka.Message{Topic: s.topic, Key: []byte(ws), Value: winner.Raw, Headers: []kafka.Header{{Key: RevisionHeader, Value: []byte(winner.Revision)}}}
			if err := s.producer.Produce(ctx, again); err != nil {
				s.log.Error("config topic: re-writing the winner of a version race", "workspace", ws, "err", err)
			}
		}
	}
	return out, nil
}

// Seed writes every workspace of c when the topic holds none; it reports
// whether it did. Several instances seeding at once: one wins each
// workspace, the others get conflicts, which are not errors here.
func (s *Store) Seed(ctx context.Context, c sources.Config) (bool, error) {
	if len(s.Documents()) > 0 {
		return false, nil
	}
	if err := s.Check(c.Workspaces); err != nil {
		return false, fmt.Errorf("seeding config topic: %w", err)
	}
	for _, w := range c.Workspaces {
		if _, err := s.Put(ctx, w, 0, "seed"); err != nil && !errors.Is(err, ErrConflict) {
			return false, fmt.Errorf("seeding workspace %s: %w", w.ID, err)
		}
	}
	return true, nil
}

// ApplyReport is what an apply did (or, dry, would do).
type ApplyReport struct {
	DryRun  bool      `json:"dry_run"`
	Changes []Change  `json:"changes"`
	Skipped []Skipped `json:"skipped,omitempty"`
	// Written are the new versions, by workspace.
	Written map[string]int64 `json:"written,omitempty"`
}

// Skipped is a workspace of the file the caller may not write.
type Skipped struct {
	Workspace string `json:"workspace"`
	Reason    string `json:"reason"`
}

// Apply upserts every workspace of c that may allows (may returns why
// not, given whether the workspace exists): GitOps. The file must build
// on its own and together with the workspaces it does not name; nothing
// is written unless it does. dry validates and reports only.
func (s *Store) Apply(ctx context.Context, c sources.Config, may func(ws string, exists bool) error, dry bool, by string) (ApplyReport, error) {
	rep := ApplyReport{DryRun: dry, Changes: []Change{}}
	s.Reader.mu.Lock()
	build := s.state.build
	s.Reader.mu.Unlock()
	if _, err := build(c); err != nil {
		return rep, &InvalidError{Err: err}
	}
	var allowed []sources.Workspace
	versions := map[string]int64{}
	for _, w := range c.Workspaces {
		cur, exists := s.Get(w.ID)
		if err := may(w.ID, exists); err != nil {
			rep.Skipped = append(rep.Skipped, Skipped{Workspace: w.ID, Reason: err.Error()})
			continue
		}
		var old *sources.Workspace
		if exists {
			old = &cur.Workspace
		}
		if err := CheckSegmentVersions(old, w); err != nil {
			return rep, err
		}
		ch := Diff(old, w)
		rep.Changes = append(rep.Changes, ch)
		if ch.Action != "unchanged" {
			allowed = append(allowed, w)
			versions[w.ID] = cur.Version
		}
	}
	if err := s.Check(allowed); err != nil {
		return rep, err
	}
	for _, w := range allowed {
		raw, err := Encode(Document{Workspace: w, Version: versions[w.ID] + 1, UpdatedAt: s.now(), UpdatedBy: by})
		if err != nil {
			return rep, err
		}
		if err := checkSize(w.ID, len(raw)); err != nil {
			return rep, err
		}
	}
	if dry {
		return rep, nil
	}
	rep.Written = map[string]int64{}
	for _, w := range allowed {
		doc, err := s.Put(ctx, w, versions[w.ID], by)
		if err != nil {
			return rep, fmt.Errorf("applying workspace %s: %w", w.ID, err)
		}
		rep.Written[w.ID] = doc.Version
	}
	return rep, nil
}

// MaxDocumentBytes bounds one workspace's document: it is one record of
// the config topic, and Kafka refuses records over its message.max.bytes
// (1 MiB by default; the producers' batches are 1 MiB too).
const MaxDocumentBytes = 900 << 10

// TooLargeError: a workspace's document is over MaxDocumentBytes.
type TooLargeError struct {
	Workspace string
	Bytes     int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("workspace %s's configuration would be %d bytes; a workspace holds at most %d (one record of the config topic): split large tracking plans or segment lists across workspaces or sources", e.Workspace, e.Bytes, MaxDocumentBytes)
}

func checkSize(ws string, n int) error {
	if n > MaxDocumentBytes {
		return &TooLargeError{Workspace: ws, Bytes: n}
	}
	return nil
}

// clone is a deep copy of w: fn edits slices and maps that the reader's
// documents would otherwise share.
func clone(w sources.Workspace) (sources.Workspace, error) {
	b, err := json.Marshal(w)
	if err != nil {
		return sources.Workspace{}, fmt.Errorf("copying workspace %s: %w", w.ID, err)
	}
	var out sources.Workspace
	if err := json.Unmarshal(b, &out); err != nil {
		return sources.Workspace{}, fmt.Errorf("copying workspace %s: %w", w.ID, err)
	}
	return out, nil
}
