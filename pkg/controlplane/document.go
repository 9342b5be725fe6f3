// Package controlplane keeps the workspace configuration (pkg/sources) on a
// compacted Kafka topic, so every instance of every service sees a change
// within seconds, without a restart and without a shared file:
//
//	API (Store.Put) ──acks=all──▶ [cdp.config] ──▶ Reader in collector, validator, stitcher, segmenter, api ──▶ *sources.Live
//
// The topic is a table: one record per workspace, key = workspace id,
// value = its Document as JSON (an entry of the YAML file's workspaces:
// plus version and updated_at), an empty value (tombstone) = the workspace
// was deleted. It has one partition, so every reader sees every change in
// the same order, and it is compacted, so a reader starting later reads
// only the latest record of each workspace.
//
// Concurrency is optimistic: a write names the version it replaces and
// becomes version+1. The topic itself cannot compare-and-set, so the order
// of the log decides: a reader accepts a document only when its version is
// the one after the version it holds for that workspace; a later record at
// the same version lost the race, is ignored by every reader, and its
// writer answers a conflict (see Store.Put for how the loser re-writes the
// winner so compaction keeps it).
//
// A document that does not build (sources.Build) on some instance — a
// pii_secret_env missing there, say — leaves that workspace at its last
// good version on that instance and is logged and counted; the other
// workspaces are not affected.
package controlplane

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/firstparty/firstparty/pkg/sources"
)

// Document is one workspace's configuration as the topic holds it: the
// fields of one entry of the YAML file's workspaces: (sources.Workspace),
// plus its version and when and by whom it was written.
type Document struct {
	sources.Workspace
	// Version counts the writes of the workspace: 1 when created.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	// UpdatedBy says who wrote it (the API names the key's workspace, or
	// "seed" and "apply").
	UpdatedBy string `json:"updated_by,omitempty"`
}

// Decode reads a document from the topic. Unknown fields are allowed
// there (a newer writer may add some); callers that take a document from
// a person use DecodeStrict.
func Decode(data []byte) (Document, error) {
	var d Document
	if err := json.Unmarshal(data, &d); err != nil {
		return Document{}, fmt.Errorf("decoding workspace document: %w", err)
	}
	if d.ID == "" {
		return Document{}, errors.New("decoding workspace document: no id")
	}
	return d, nil
}

// DecodeStrict reads a document sent by a person: unknown (misspelt)
// fields and trailing data are errors.
func DecodeStrict(r io.Reader) (Document, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return Document{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Document{}, errors.New("data after the JSON object")
	}
	return d, nil
}

// Encode is the record value of d.
func Encode(d Document) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encoding workspace %s: %w", d.ID, err)
	}
	return b, nil
}

// ErrConflict: the version a write names is not the current one.
var ErrConflict = errors.New("version conflict")

// ConflictError says which version is current.
type ConflictError struct {
	Workspace         string
	Expected, Current int64
}

func (e *ConflictError) Error() string {
	if e.Current == 0 {
		return fmt.Sprintf("workspace %s: version %d was expected but the workspace does not exist (send version 0 to create it)", e.Workspace, e.Expected)
	}
	return fmt.Sprintf("workspace %s is at version %d, not %d: read it again and apply your change to the current version", e.Workspace, e.Current, e.Expected)
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ErrInvalid: the configuration does not build.
var ErrInvalid = errors.New("invalid configuration")

// InvalidError carries sources.Build's message.
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string        { return e.Err.Error() }
func (e *InvalidError) Unwrap() error        { return e.Err }
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// NewWriteKey returns a fresh write key: fpw_ and 32 hex digits of
// crypto/rand (128 bits).
func NewWriteKey() string { return "fpw_" + randomHex(16) }

// newRevision identifies one write, so its writer recognises it when the
// reader gets to it.
func newRevision() string { return randomHex(12) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// Change is what applying a workspace would do: Action is "create",
// "update" or "unchanged"; Changes names what differs, e.g.
// "sources[web]: changed", "segments[vip]: added", "consent: changed".
type Change struct {
	Workspace string   `json:"workspace"`
	Action    string   `json:"action"`
	Changes   []string `json:"changes,omitempty"`
}

// Diff compares a workspace's current configuration (nil: absent) with a
// new one.
func Diff(old *sources.Workspace, new sources.Workspace) Change {
	c := Change{Workspace: new.ID}
	if old == nil {
		c.Action = "create"
		return c
	}
	c.Changes = append(c.Changes, diffList("sources", ids(old.Sources, func(s sources.Source) string { return s.ID }), ids(new.Sources, func(s sources.Source) string { return s.ID }))...)
	c.Changes = append(c.Changes, diffList("segments", ids(old.Segments, segID), ids(new.Segments, segID))...)
	c.Changes = append(c.Changes, diffList("destinations", ids(old.Destinations, destID), ids(new.Destinations, destID))...)
	for _, f := range []struct {
		name     string
		old, new any
	}{
		{"name", old.Name, new.Name}, {"consent", old.Consent, new.Consent},
		{"pii_secret_env", old.PIISecretEnv, new.PIISecretEnv}, {"identity", old.Identity, new.Identity},
	} {
		if !sameJSON(f.old, f.new) {
			c.Changes = append(c.Changes, f.name+": changed")
		}
	}
	sort.Strings(c.Changes)
	c.Action = "update"
	if len(c.Changes) == 0 {
		c.Action = "unchanged"
	}
	return c
}

// ids maps each element's id to its JSON.
func ids[T any](list []T, id func(T) string) map[string][]byte {
	out := make(map[string][]byte, len(list))
	for _, v := range list {
		b, _ := json.Marshal(v)
		out[id(v)] = b
	}
	return out
}

func diffList(section string, old, new map[string][]byte) []string {
	var out []string
	for id, b := range new {
		o, ok := old[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s[%s]: added", section, id))
		case !bytes.Equal(o, b):
			out = append(out, fmt.Sprintf("%s[%s]: changed", section, id))
		}
	}
	for id := range old {
		if _, ok := new[id]; !ok {
			out = append(out, fmt.Sprintf("%s[%s]: removed", section, id))
		}
	}
	return out
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// SegmentField names the field of segment id that err (from
// segments.CompileDefinition) is about, as a path into the workspace
// document: "segments[vip].condition", "segments[vip].aggregates.revenue".
func SegmentField(id string, err error) string {
	base := "segments[" + id + "]"
	msg := err.Error()
	if strings.HasPrefix(msg, "id ") {
		return base + ".id"
	}
	rest, ok := strings.CutPrefix(msg, "segment "+id+": ")
	if !ok {
		return base
	}
	field, _, ok := strings.Cut(rest, ":")
	if !ok {
		return base
	}
	if name, ok := strings.CutPrefix(field, "aggregate "); ok {
		return base + ".aggregates." + strings.Trim(name, `"`)
	}
	if strings.ContainsAny(field, " \n") {
		return base
	}
	return base + "." + field
}
