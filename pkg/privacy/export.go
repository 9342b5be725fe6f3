package privacy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/history"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/pii"
	"github.com/firstparty/firstparty/pkg/profileview"
)

// The export document (one JSON object, written as it is read):
//
//	{"request_id", "workspace", "identifier", "generated_at", "pii_masked",
//	 "profile":            the profile as the profile API shows it, or null,
//	 "consent":            category → newest decision,
//	 "audit":              earlier privacy requests about the person,
//	 "events":             every stored event, oldest first,
//	 "profile_changes":    every profile change row,
//	 "segment_memberships": every enter/exit row,
//	 "rejected_events":    every rejection of their events,
//	 "complete":           true — or false with "error" when reading
//	                       ClickHouse failed midway}
//
// The ClickHouse sections are streamed row by row (pkg/history), so memory
// does not grow with the person's history. Because the answer has begun
// when a later section fails, the failure is told inside the document:
// a reader must check "complete".

// ErrNotStarted wraps errors Export returns before writing anything: the
// caller can still answer with an error status.
var ErrNotStarted = errors.New("export not started")

// Export writes everything held about the person holding id to w; red
// masks personal data (nil: in clear). The request is audited with the
// rows written per section.
func (s *Service) Export(ctx context.Context, ws string, id identity.Identifier, w io.Writer, red *pii.Redaction) (Report, error) {
	rep := s.newReport(TypeExport, ws, id)
	rep.Rows = map[string]int64{}
	ids := []identity.Identifier{id}
	prof, err := s.Graph.Lookup(ctx, ws, id)
	found := err == nil
	switch {
	case found:
		ids, rep.ProfileIDs = withID(prof.Identities, id), append([]string{prof.ID}, prof.Merged...)
	case !errors.Is(err, identity.ErrNotFound):
		return rep, fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	cs, err := s.consentOf(ctx, ws, ids)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	var view any // null when no profile holds id
	if found {
		var segs []string
		if s.Segments != nil {
			ms, err := s.Segments.Memberships(ctx, ws, prof.ID)
			if err != nil {
				return rep, fmt.Errorf("%w: %w", ErrNotStarted, err)
			}
			for _, m := range ms {
				segs = append(segs, m.SegmentID)
			}
		}
		view = profileview.Render(prof, segs, cs, red)
	}
	audit, err := s.auditAbout(ctx, ws, ids, rep.ProfileIDs)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	for i := range audit {
		audit[i] = maskReport(audit[i], red)
	}

	bw := bufio.NewWriterSize(w, 32<<10)
	d := &doc{w: bw, enc: json.NewEncoder(bw)}
	d.enc.SetEscapeHTML(false)
	d.raw("{")
	d.field("request_id", rep.RequestID)
	d.field("workspace", ws)
	d.field("identifier", profileview.Identifier(red, id.Type, id.Value))
	d.field("generated_at", rep.RequestedAt)
	d.field("pii_masked", red != nil)
	d.field("profile", view)
	d.field("consent", profileview.Consent(cs, red))
	d.field("audit", audit)
	rep.Rows["audit"] = int64(len(audit))

	p := person(ws, rep.ProfileIDs, ids)
	r := &history.Reader{ClickHouse: s.ClickHouse, Database: s.Database}
	sections := []struct {
		name string
		each func(func(any) error) error
	}{
		{"events", func(f func(any) error) error {
			return r.EachEvent(ctx, p, func(e history.Event) error { return f(maskEvent(e, red)) })
		}},
		{"profile_changes", func(f func(any) error) error {
			return r.EachChange(ctx, p, func(c history.Change) error { return f(maskChange(c, red)) })
		}},
		{"segment_memberships", func(f func(any) error) error {
			return r.EachMembership(ctx, p, func(m history.Membership) error { return f(m) })
		}},
		{"rejected_events", func(f func(any) error) error {
			return r.EachRejection(ctx, p, func(x history.Rejection) error { return f(maskRejection(x, red)) })
		}},
	}
	var failed error
	for _, sec := range sections {
		d.raw(`,"` + sec.name + `":[`)
		n := int64(0)
		if s.ClickHouse != nil && failed == nil {
			failed = sec.each(func(v any) error {
				if n > 0 {
					d.raw(",")
				}
				n++
				d.value(v)
				return d.err
			})
		}
		d.raw("]")
		rep.Rows[sec.name] = n
	}
	rep.CompletedAt = s.now()
	if failed != nil {
		d.field("error", failed.Error())
		rep.Status = "failed: " + failed.Error()
	} else {
		rep.Status = "completed"
	}
	d.field("complete", failed == nil)
	d.raw("}\n")
	if err := bw.Flush(); err != nil && d.err == nil {
		d.err = err
	}
	if d.err != nil {
		rep.Status = "failed: writing the answer: " + d.err.Error()
	}
	if err := s.audit(ctx, rep); err != nil {
		return rep, err
	}
	switch {
	case failed != nil:
		return rep, fmt.Errorf("exporting %s: %w", id, failed)
	case d.err != nil:
		return rep, fmt.Errorf("exporting %s: writing the answer: %w", id, d.err)
	}
	return rep, nil
}

func (s *Service) consentOf(ctx context.Context, ws string, ids []identity.Identifier) (consent.State, error) {
	if s.Consent == nil {
		return nil, nil
	}
	return s.Consent.Read(ctx, ws, toConsent(ids))
}

// doc writes the export document, remembering the first write error.
type doc struct {
	w       *bufio.Writer
	enc     *json.Encoder
	err     error
	started bool // a field was written: the next needs a comma
}

func (d *doc) raw(s string) {
	if d.err == nil {
		_, d.err = d.w.WriteString(s)
	}
}

func (d *doc) value(v any) {
	if d.err == nil {
		d.err = d.enc.Encode(v) // a trailing newline: whitespace between members
	}
}

func (d *doc) field(name string, v any) {
	if d.started {
		d.raw(",")
	}
	d.started = true
	d.raw(`"` + name + `":`)
	d.value(v)
}

// auditAbout returns the audit entries about the person: those naming one
// of ids or one of pids. The log is capped (auditCap), so this is bounded.
func (s *Service) auditAbout(ctx context.Context, ws string, ids []identity.Identifier, pids []string) ([]Report, error) {
	about := map[string]bool{}
	for _, id := range ids {
		about[id.String()] = true
	}
	for _, p := range pids {
		about["$profile:"+p] = true
	}
	out := []Report{}
	const page = 1000
	for start := int64(0); start < auditCap; start += page {
		vals, err := s.Redis.LRange(ctx, AuditKey(ws), start, start+page-1).Result()
		if err != nil {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
		for _, v := range vals {
			var r Report
			if json.Unmarshal([]byte(v), &r) != nil {
				continue
			}
			match := about[r.Identifier]
			for _, x := range r.Suppressed {
				match = match || about[x]
			}
			for _, p := range r.ProfileIDs {
				match = match || about["$profile:"+p]
			}
			if match {
				if r.Type == "" {
					r.Type = TypeErase
				}
				out = append(out, r)
			}
		}
		if len(vals) < page {
			break
		}
	}
	return out, nil
}

// MaskReport masks the identifiers an audit entry names (red nil: as is).
func MaskReport(r Report, red *pii.Redaction) Report { return maskReport(r, red) }

func maskReport(r Report, red *pii.Redaction) Report {
	if red == nil {
		return r
	}
	r.Identifier = maskIdentifier(r.Identifier, red)
	sup := make([]string, len(r.Suppressed))
	for i, x := range r.Suppressed {
		sup[i] = maskIdentifier(x, red)
	}
	if r.Suppressed != nil {
		r.Suppressed = sup
	}
	return r
}

func maskIdentifier(s string, red *pii.Redaction) string {
	t, v, ok := strings.Cut(s, ":")
	if !ok {
		return s
	}
	return profileview.Identifier(red, t, v)
}

// MaskEvent masks an event's personal data (red nil: as is).
func MaskEvent(e history.Event, red *pii.Redaction) history.Event { return maskEvent(e, red) }

func maskEvent(e history.Event, red *pii.Redaction) history.Event {
	if red == nil {
		return e
	}
	e.Properties = red.Document("properties", e.Properties)
	e.Traits = red.Document("traits", e.Traits)
	e.Context = red.Document("context", e.Context)
	return e
}

func maskChange(c history.Change, red *pii.Redaction) history.Change {
	if red == nil {
		return c
	}
	ids := make([][2]string, len(c.Identities))
	for i, id := range c.Identities {
		ids[i] = [2]string{id[0], red.Identifier(id[0], id[1])}
	}
	c.Identities = ids
	traits := make([]history.TraitChange, len(c.Traits))
	for i, t := range c.Traits {
		o := red.Traits(map[string]json.RawMessage{t.Key: t.Old})
		n := red.Traits(map[string]json.RawMessage{t.Key: t.New})
		traits[i] = history.TraitChange{Key: t.Key, Old: o[t.Key], New: n[t.Key]}
	}
	c.Traits = traits
	return c
}

// maskRejection: a rejection's raw payload and violation details may hold
// anything the SDK sent; a reader without pii:read gets neither.
func maskRejection(x history.Rejection, red *pii.Redaction) history.Rejection {
	if red == nil {
		return x
	}
	if x.Raw != "" {
		x.Raw = "***"
	}
	d := make([]string, len(x.Details))
	for i := range x.Details {
		d[i] = "***"
	}
	x.Details = d
	return x
}
