package controlplane

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/firstparty/firstparty/pkg/segments"
	"github.com/firstparty/firstparty/pkg/sources"
	"github.com/firstparty/firstparty/pkg/webhook"
)

func segID(d segments.Definition) string     { return d.ID }
func destID(d webhook.Destination) string    { return d.ID }
func wsOf(docs map[string]Document) []string { return slices.Sorted(maps.Keys(docs)) }

// Record is one message of the config topic, decoded: Doc nil is a
// tombstone (the workspace was deleted). Revision identifies the write
// (a header); Raw is the value as read, kept to write it again.
type Record struct {
	Workspace string
	Doc       *Document
	Revision  string
	Raw       []byte
}

// Outcome is what a record did.
type Outcome struct {
	// Kind: "applied" (in force), "deleted", "duplicate" (the record in
	// force written again), "stale" (its version lost to an earlier
	// record: a conflict), "invalid" (accepted as the latest version but
	// it does not build here, so the last good version stays in force).
	Kind string
	Err  error
}

// State is the pure core of a reader: the latest accepted document of
// every workspace (what versions are checked against), the documents in
// force (the last that built), and their registry. It does no I/O; the
// Reader feeds it records in log order.
type State struct {
	latest map[string]Record   // by workspace: the latest accepted record
	good   map[string]Document // by workspace: in force
	reg    *sources.Registry
	build  func(sources.Config) (*sources.Registry, error)
}

// NewState is an empty state building registries with build (nil:
// sources.Build).
func NewState(build func(sources.Config) (*sources.Registry, error)) *State {
	if build == nil {
		build = sources.Build
	}
	return &State{latest: map[string]Record{}, good: map[string]Document{}, reg: &sources.Registry{}, build: build}
}

// Registry is the registry of the documents in force.
func (s *State) Registry() *sources.Registry { return s.reg }

// Latest is the latest accepted document of a workspace.
func (s *State) Latest(ws string) (Document, bool) {
	r, ok := s.latest[ws]
	if !ok {
		return Document{}, false
	}
	return *r.Doc, true
}

// LatestRecord is the latest accepted record of a workspace.
func (s *State) LatestRecord(ws string) (Record, bool) {
	r, ok := s.latest[ws]
	return r, ok
}

// Documents lists the latest accepted documents, by workspace id.
func (s *State) Documents() []Document {
	out := make([]Document, 0, len(s.latest))
	for _, ws := range slices.Sorted(maps.Keys(s.latest)) {
		out = append(out, *s.latest[ws].Doc)
	}
	return out
}

// Version is a workspace's current version, 0 when it does not exist.
func (s *State) Version(ws string) int64 {
	if r, ok := s.latest[ws]; ok {
		return r.Doc.Version
	}
	return 0
}

// Expect checks that ws is at version expected (0: absent).
func (s *State) Expect(ws string, expected int64) error {
	if cur := s.Version(ws); cur != expected {
		return &ConflictError{Workspace: ws, Expected: expected, Current: cur}
	}
	return nil
}

// Check builds the documents in force with docs replacing (or adding)
// their workspaces and without the workspaces in deleted: the
// configuration as it would be after writing them.
func (s *State) Check(docs []sources.Workspace, deleted ...string) error {
	cand := make(map[string]Document, len(s.good)+len(docs))
	for k, v := range s.good {
		cand[k] = v
	}
	for _, ws := range deleted {
		delete(cand, ws)
	}
	for _, w := range docs {
		cand[w.ID] = Document{Workspace: w}
	}
	if _, err := s.build(Merge(cand)); err != nil {
		return &InvalidError{Err: err}
	}
	return nil
}

// Apply takes one record, in log order.
func (s *State) Apply(rec Record) Outcome {
	out := s.accept(rec)
	if out.Kind != "applied" && out.Kind != "deleted" {
		return out
	}
	cand := make(map[string]Document, len(s.good)+1)
	for k, v := range s.good {
		cand[k] = v
	}
	if rec.Doc == nil {
		delete(cand, rec.Workspace)
	} else {
		cand[rec.Workspace] = *rec.Doc
	}
	reg, err := s.build(Merge(cand))
	if err != nil {
		return Outcome{Kind: "invalid", Err: fmt.Errorf("workspace %s version %d: %w", rec.Workspace, versionOf(rec), err)}
	}
	s.good, s.reg = cand, reg
	return out
}

// Load takes the records of a catch-up, in log order, and builds once when
// every latest document builds together (the usual case); otherwise it
// replays them one by one, so each workspace keeps its last version that
// built. It returns the outcome of each record.
func (s *State) Load(recs []Record) []Outcome {
	saved := s.clone()
	outs := make([]Outcome, len(recs))
	for i, rec := range recs {
		outs[i] = s.accept(rec)
	}
	cand := map[string]Document{}
	for ws, r := range s.latest {
		cand[ws] = *r.Doc
	}
	if reg, err := s.build(Merge(cand)); err == nil {
		s.good, s.reg = cand, reg
		return outs
	}
	*s = *saved
	for i, rec := range recs {
		outs[i] = s.Apply(rec)
	}
	return outs
}

// accept checks a record's version against the latest and records it.
func (s *State) accept(rec Record) Outcome {
	prev, had := s.latest[rec.Workspace]
	if rec.Doc == nil {
		if !had {
			return Outcome{Kind: "duplicate"}
		}
		delete(s.latest, rec.Workspace)
		return Outcome{Kind: "deleted"}
	}
	if rec.Doc.ID != rec.Workspace {
		return Outcome{Kind: "invalid", Err: fmt.Errorf("record key %q holds workspace %q", rec.Workspace, rec.Doc.ID)}
	}
	if had {
		switch {
		case rec.Doc.Version == prev.Doc.Version && rec.Revision != "" && rec.Revision == prev.Revision:
			return Outcome{Kind: "duplicate"}
		case rec.Doc.Version != prev.Doc.Version+1:
			return Outcome{Kind: "stale", Err: &ConflictError{Workspace: rec.Workspace, Expected: rec.Doc.Version - 1, Current: prev.Doc.Version}}
		}
	} else if rec.Doc.Version < 1 {
		return Outcome{Kind: "invalid", Err: fmt.Errorf("workspace %s: version %d; versions start at 1", rec.Workspace, rec.Doc.Version)}
	}
	s.latest[rec.Workspace] = rec
	return Outcome{Kind: "applied"}
}

func (s *State) clone() *State {
	c := &State{latest: make(map[string]Record, len(s.latest)), good: make(map[string]Document, len(s.good)), reg: s.reg, build: s.build}
	for k, v := range s.latest {
		c.latest[k] = v
	}
	for k, v := range s.good {
		c.good[k] = v
	}
	return c
}

func versionOf(rec Record) int64 {
	if rec.Doc == nil {
		return 0
	}
	return rec.Doc.Version
}

// Merge is the configuration of the given documents, in workspace order.
func Merge(docs map[string]Document) sources.Config {
	c := sources.Config{Workspaces: make([]sources.Workspace, 0, len(docs))}
	for _, ws := range wsOf(docs) {
		c.Workspaces = append(c.Workspaces, docs[ws].Workspace)
	}
	return c
}

// errorsOf joins the errors of outcomes (for a log line).
func errorsOf(outs []Outcome) error {
	var errs []error
	for _, o := range outs {
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	return errors.Join(errs...)
}
