package privacy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
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
//	 "identities":         every identities row (identifier → profile),
//	 "profile_changes":    every profile change row,
//	 "segment_memberships": every enter/exit row,
//	 "rejected_events":    every rejection of their events,
//	 "complete":           true — or false with "error" when reading
//	                       ClickHouse failed midway}
//
// The ClickHouse sections are exactly history.Tables, the tables erase
// deletes from, selected by the same Person and history.Where.
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
	shown := id.String()
	if red != nil {
		shown = maskIdentifier(shown, red)
	}
	d.field("identifier", shown)
	d.field("generated_at", rep.RequestedAt)
	d.field("pii_masked", red != nil)
	d.field("profile", view)
	d.field("consent", profileview.Consent(cs, red))
	d.field("audit", audit)
	rep.Rows["audit"] = int64(len(audit))

	p := Person(ws, rep.ProfileIDs, ids)
	r := &history.Reader{ClickHouse: s.ClickHouse, Database: s.Database}
	sections := exportSections(ctx, r, p, red)
	var failed error
	for _, table := range history.Tables { // every table erase deletes from
		d.raw(`,"` + table + `":[`)
		n := int64(0)
		if s.ClickHouse != nil && failed == nil {
			each := sections[table]
			if each == nil {
				each = func(func(any) error) error { return fmt.Errorf("no export for table %s", table) }
			}
			failed = each(func(v any) error {
				if n > 0 {
					d.raw(",")
				}
				n++
				d.value(v)
				return d.err
			})
			if failed != nil {
				failed = &sectionError{section: table, err: failed}
			}
		}
		d.raw("]")
		rep.Rows[table] = n
	}
	rep.CompletedAt = s.now()
	if failed != nil {
		// The reader gets no ClickHouse error text: it can quote the
		// query, and with it the person's identifiers. The log has it.
		msg := "reading " + failed.(*sectionError).section + " failed midway; send the request again"
		if s.Log != nil {
			s.Log.Warn("export failed", "request", rep.RequestID, "workspace", ws, "err", failed)
		}
		d.field("error", msg)
		rep.Status = "failed: " + msg
	} else {
		rep.Status = "completed"
	}
	d.field("complete", failed == nil)
	d.raw("}\n")
	if err := bw.Flush(); err != nil && d.err == nil {
		d.err = err
	}
	if d.err != nil {
		rep.Status = "failed: writing the answer (the reader went away?)"
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

// sectionError is a failure while writing one section of the export.
type sectionError struct {
	section string
	err     error
}

func (e *sectionError) Error() string { return e.section + ": " + e.err.Error() }
func (e *sectionError) Unwrap() error { return e.err }

// exportSections reads each table of history.Tables for p, masked by red;
// the export writes them in that order, one section per table.
func exportSections(ctx context.Context, r *history.Reader, p history.Person, red *pii.Redaction) map[string]func(func(any) error) error {
	return map[string]func(func(any) error) error{
		"events": func(f func(any) error) error {
			return r.EachEvent(ctx, p, func(e history.Event) error { return f(maskEvent(e, red)) })
		},
		"identities": func(f func(any) error) error {
			return r.EachIdentity(ctx, p, func(x history.Identity) error { return f(maskIdentity(x, red)) })
		},
		"profile_changes": func(f func(any) error) error {
			return r.EachChange(ctx, p, func(c history.Change) error { return f(maskChange(c, red)) })
		},
		"segment_memberships": func(f func(any) error) error {
			return r.EachMembership(ctx, p, func(m history.Membership) error { return f(m) })
		},
		"rejected_events": func(f func(any) error) error {
			return r.EachRejection(ctx, p, func(x history.Rejection) error { return f(maskRejection(x, red)) })
		},
	}
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
	for _, key := range auditKeys(ws) {
		for start := int64(0); start < auditCap; start += page {
			vals, err := s.Redis.LRange(ctx, key, start, start+page-1).Result()
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
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RequestedAt.After(out[j].RequestedAt) })
	return out, nil
}

// MaskReport masks the identifiers an audit entry names (red nil: as is).
func MaskReport(r Report, red *pii.Redaction) Report { return maskReport(r, red) }

func maskReport(r Report, red *pii.Redaction) Report {
	if red == nil {
		return r
	}
	r.Identifier = maskIdentifier(r.Identifier, red)
	if r.Suppressed != nil {
		sup := make([]string, len(r.Suppressed))
		for i, x := range r.Suppressed {
			sup[i] = maskIdentifier(x, red)
		}
		r.Suppressed = sup
	}
	// Free text may quote an identifier (a ticket reason naming the
	// email, an error): email- and phone-shaped values are masked
	// whatever the field.
	r.Reason, r.Status, r.Source = pii.MaskText(r.Reason), pii.MaskText(r.Status), pii.MaskText(r.Source)
	return r
}

// maskIdentifier masks "type:value" as its type says, and an email- or
// phone-shaped value of any type (a user_id that is an email).
func maskIdentifier(s string, red *pii.Redaction) string {
	t, v, ok := strings.Cut(s, ":")
	if !ok {
		return pii.MaskText(s)
	}
	return t + ":" + pii.MaskText(profileview.Value(red, t, v))
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
	e.UserID = pii.MaskText(e.UserID)
	return e
}

func maskIdentity(x history.Identity, red *pii.Redaction) history.Identity {
	if red != nil {
		x.Value = pii.MaskText(red.Identifier(x.Type, x.Value))
	}
	return x
}

func maskChange(c history.Change, red *pii.Redaction) history.Change {
	if c.Kind == "MERGE_BLOCKED" {
		// The identifiers kept apart are on another profile — another
		// person's: never exported, pii:read or not.
		c.Detail = withholdBlocked(c.Detail)
	}
	if red == nil {
		return c
	}
	ids := make([][2]string, len(c.Identities))
	for i, id := range c.Identities {
		ids[i] = [2]string{id[0], pii.MaskText(red.Identifier(id[0], id[1]))}
	}
	c.Identities = ids
	traits := make([]history.TraitChange, len(c.Traits))
	for i, t := range c.Traits {
		o := red.Traits(map[string]json.RawMessage{t.Key: t.Old})
		n := red.Traits(map[string]json.RawMessage{t.Key: t.New})
		traits[i] = history.TraitChange{Key: t.Key, Old: o[t.Key], New: n[t.Key]}
	}
	c.Traits = traits
	// An unlink's cause names both identifiers it cut apart
	// ("unlink/email:ann@x.io|email:bob@x.io/p_…").
	c.CauseMessageID, c.Detail = pii.MaskText(c.CauseMessageID), pii.MaskText(c.Detail)
	return c
}

// withholdBlocked replaces the identifiers a MERGE_BLOCKED detail names
// (the stitcher writes "merge protection kept apart identifier <type:value>:
// <reason>; profile <id>: <reason>") by "(withheld)", keeping the reasons
// and the profile ids. A part it cannot read is withheld whole.
func withholdBlocked(detail string) string {
	const lead = "merge protection kept apart "
	body, ok := strings.CutPrefix(detail, lead)
	if !ok {
		return "merge protection kept another profile's identifiers apart (withheld)"
	}
	parts := strings.Split(body, "; ")
	for i, part := range parts {
		switch {
		case strings.HasPrefix(part, "profile "):
		case strings.HasPrefix(part, "identifier ") && strings.Contains(part, ": "):
			parts[i] = "identifier (withheld): " + part[strings.LastIndex(part, ": ")+2:]
		default:
			parts[i] = "(withheld)"
		}
	}
	return lead + strings.Join(parts, "; ")
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
	x.UserID = pii.MaskText(x.UserID)
	d := make([]string, len(x.Details))
	for i := range x.Details {
		d[i] = "***"
	}
	x.Details = d
	return x
}
