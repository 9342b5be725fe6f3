// Package history reads a person's history from ClickHouse — the tables the
// loader writes (services/loader/migrations): events, profile_changes,
// segment_memberships and rejected_events. The profile API shows a
// profile's recent events with it, privacy export streams everything held
// about a person, and privacy erase deletes the same rows, selected by the
// same predicates (Where), so what export shows is what erase removes.
//
// A person is their live profile with every profile merged into it (the
// lineage Redis keeps), plus their identifiers: events are matched by
// profile id, and also by user_id and anonymous_id, so an event resolved
// to a profile id since erased or split off is still found. Rejections
// carry no profile id; they match by user_id and anonymous_id, and by an
// email or phone appearing as a JSON string in the raw payload the SDK sent
// (that payload is why erase must reach them).
//
// Every read is a single streaming query: rows are handed to a callback as
// ClickHouse sends them, so memory does not grow with the person's history.
package history

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/firstparty/firstparty/pkg/jsonedit"
)

// Person is whose history to read.
type Person struct {
	Workspace string
	// ProfileIDs: the live profile and the profiles merged into it.
	ProfileIDs []string
	// Identifiers as "type:value" pairs.
	Identifiers [][2]string
}

// Tables the loader writes that hold a person's rows, in the order export
// writes them and erase deletes them.
var Tables = []string{"events", "identities", "profile_changes", "segment_memberships", "rejected_events"}

// Where is the predicate selecting person's rows of table (one of Tables).
func Where(table string, p Person) string {
	var users, anons []string
	for _, id := range p.Identifiers {
		switch id[0] {
		case "user_id":
			users = append(users, id[1])
		case "anonymous_id":
			anons = append(anons, id[1])
		}
	}
	// An empty list matches nothing (never "user_id IN ('')", which would
	// match every event without a user id).
	w := "workspace_id = " + Quote(p.Workspace)
	byProfile := in("profile_id", p.ProfileIDs)
	switch table {
	case "events":
		return w + " AND " + anyOf(byProfile, in("user_id", users), in("anonymous_id", anons))
	case "identities":
		lineage := ""
		if len(p.ProfileIDs) > 0 {
			lineage = "(identifier_type = '$profile_id' AND " + in("identifier_value", p.ProfileIDs) + ")"
		}
		return w + " AND " + anyOf(byProfile, lineage)
	case "rejected_events":
		// The raw payload is stored as the SDK sent it, before
		// standardisation, so the value is looked for as a JSON string
		// (quotes included, so "joann@x.io" does not match "ann@x.io"),
		// ignoring case (positionCaseInsensitiveUTF8: ClickHouse 18.16 and
		// current), in every spelling RawForms derives.
		conds := []string{in("user_id", users), in("anonymous_id", anons)}
		for _, id := range p.Identifiers {
			for _, v := range RawForms(id[0], id[1]) {
				conds = append(conds, "positionCaseInsensitiveUTF8(raw, "+Quote(string(jsonedit.AppendString(nil, v)))+") > 0")
			}
		}
		return w + " AND " + anyOf(conds...)
	default: // profile_changes, segment_memberships
		return w + " AND " + anyOf(byProfile)
	}
}

// RawForms are the spellings of an identifier that Where looks for in a
// rejected event's raw payload (case is ignored as well): an email as
// stored (standardize lowercases and trims it); a phone in E.164 as
// stored ("+4915112345678") and with the international prefix 00
// ("004915112345678"). Other identifier types are matched by column, not
// in the payload.
//
// The limit: a payload that spelt the value some other way — a phone in a
// national format or with spaces ("0151 1234 5678"), an email with JSON
// escapes ("ann\u0040x.io") or surrounding spaces — is not found by these
// predicates, so export does not show it and erase does not delete it;
// the rejection's user_id and anonymous_id still match it when it carried
// them.
func RawForms(typ, value string) []string {
	switch typ {
	case "email":
		return []string{value}
	case "phone":
		if rest, ok := strings.CutPrefix(value, "+"); ok && rest != "" {
			return []string{value, "00" + rest}
		}
		return []string{value}
	}
	return nil
}

// in is "col IN (…)", or "" for no values.
func in(col string, vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return col + " IN (" + list(vs) + ")"
}

// anyOf ORs the non-empty conditions; none is false.
func anyOf(conds ...string) string {
	var set []string
	for _, c := range conds {
		if c != "" {
			set = append(set, c)
		}
	}
	if len(set) == 0 {
		return "0"
	}
	return "(" + strings.Join(set, " OR ") + ")"
}

func list(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = Quote(v)
	}
	return strings.Join(q, ",")
}

// Quote makes a ClickHouse string literal.
func Quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Reader reads history from one ClickHouse database.
type Reader struct {
	ClickHouse driver.Conn
	Database   string
}

// Event is one stored event. Properties, Traits and Context are the JSON
// objects as the SDK sent them (after the validator's rules).
type Event struct {
	MessageID   string          `json:"message_id"`
	SourceID    string          `json:"source_id"`
	Type        string          `json:"type"`
	Event       string          `json:"event,omitempty"`
	Name        string          `json:"name,omitempty"`
	AnonymousID string          `json:"anonymous_id,omitempty"`
	UserID      string          `json:"user_id,omitempty"`
	ProfileID   string          `json:"profile_id"`
	Timestamp   time.Time       `json:"timestamp"`
	ReceivedAt  time.Time       `json:"received_at"`
	Properties  json.RawMessage `json:"properties"`
	Traits      json.RawMessage `json:"traits"`
	Context     json.RawMessage `json:"context"`
	TraceID     string          `json:"trace_id,omitempty"`
}

const eventColumns = "message_id, source_id, type, event, name, anonymous_id, user_id, profile_id, timestamp, timestamp_ms, received_at, received_at_ms, properties, traits, context, trace_id"

func ms(t time.Time, ms uint16) time.Time {
	return t.UTC().Add(time.Duration(ms) * time.Millisecond)
}

func rawJSON(s string) json.RawMessage {
	if s == "" || !jsonedit.Valid([]byte(s)) {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

// Recent returns the newest limit events of the profiles pids, newest
// first (each event once: FINAL collapses redeliveries).
func (r *Reader) Recent(ctx context.Context, ws string, pids []string, limit int) ([]Event, error) {
	q := fmt.Sprintf("SELECT %s FROM %s.events FINAL WHERE workspace_id = %s AND %s ORDER BY timestamp DESC, timestamp_ms DESC, message_id DESC LIMIT %d",
		eventColumns, r.Database, Quote(ws), anyOf(in("profile_id", pids)), limit)
	var out []Event
	err := r.eachEvent(ctx, q, func(e Event) error { out = append(out, e); return nil })
	return out, err
}

// EachEvent hands every event of p to fn, oldest first.
func (r *Reader) EachEvent(ctx context.Context, p Person, fn func(Event) error) error {
	q := fmt.Sprintf("SELECT %s FROM %s.events FINAL WHERE %s ORDER BY timestamp, timestamp_ms, message_id",
		eventColumns, r.Database, Where("events", p))
	return r.eachEvent(ctx, q, fn)
}

func (r *Reader) eachEvent(ctx context.Context, q string, fn func(Event) error) error {
	rows, err := r.ClickHouse.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("reading events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var tsMS, recMS uint16
		var props, traits, ctxJSON string
		if err := rows.Scan(&e.MessageID, &e.SourceID, &e.Type, &e.Event, &e.Name, &e.AnonymousID, &e.UserID, &e.ProfileID,
			&e.Timestamp, &tsMS, &e.ReceivedAt, &recMS, &props, &traits, &ctxJSON, &e.TraceID); err != nil {
			return fmt.Errorf("reading events: %w", err)
		}
		e.Timestamp, e.ReceivedAt = ms(e.Timestamp, tsMS), ms(e.ReceivedAt, recMS)
		e.Properties, e.Traits, e.Context = rawJSON(props), rawJSON(traits), rawJSON(ctxJSON)
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading events: %w", err)
	}
	return nil
}

// Change is one profile_changes row.
type Change struct {
	ChangeID          string        `json:"change_id"`
	ProfileID         string        `json:"profile_id"`
	Kind              string        `json:"kind"`
	OccurredAt        time.Time     `json:"occurred_at"`
	CauseMessageID    string        `json:"cause_message_id,omitempty"`
	Identities        [][2]string   `json:"identities,omitempty"` // type, value
	RelatedProfileIDs []string      `json:"related_profile_ids,omitempty"`
	Traits            []TraitChange `json:"traits,omitempty"`
	Detail            string        `json:"detail,omitempty"`
}

// TraitChange is one trait a change set; values are JSON, null when absent.
type TraitChange struct {
	Key string          `json:"key"`
	Old json.RawMessage `json:"old"`
	New json.RawMessage `json:"new"`
}

// EachChange hands every profile change of p to fn, oldest first.
func (r *Reader) EachChange(ctx context.Context, p Person, fn func(Change) error) error {
	q := fmt.Sprintf(`SELECT change_id, profile_id, kind, occurred_at, occurred_at_ms, cause_message_id, identity_types, identity_values,
		related_profile_ids, trait_keys, trait_old_values, trait_new_values, detail FROM %s.profile_changes FINAL WHERE %s
		ORDER BY occurred_at, occurred_at_ms, change_id`, r.Database, Where("profile_changes", p))
	rows, err := r.ClickHouse.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("reading profile changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Change
		var occMS uint16
		var types, values, keys, olds, news []string
		if err := rows.Scan(&c.ChangeID, &c.ProfileID, &c.Kind, &c.OccurredAt, &occMS, &c.CauseMessageID, &types, &values,
			&c.RelatedProfileIDs, &keys, &olds, &news, &c.Detail); err != nil {
			return fmt.Errorf("reading profile changes: %w", err)
		}
		c.OccurredAt = ms(c.OccurredAt, occMS)
		for i := range types {
			if i < len(values) {
				c.Identities = append(c.Identities, [2]string{types[i], values[i]})
			}
		}
		for i := range keys {
			tc := TraitChange{Key: keys[i], Old: json.RawMessage("null"), New: json.RawMessage("null")}
			if i < len(olds) {
				tc.Old = rawJSON(olds[i])
			}
			if i < len(news) {
				tc.New = rawJSON(news[i])
			}
			c.Traits = append(c.Traits, tc)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading profile changes: %w", err)
	}
	return nil
}

// Membership is one segment_memberships row (an enter or exit).
type Membership struct {
	MembershipID   string    `json:"membership_id"`
	SegmentID      string    `json:"segment_id"`
	SegmentVersion uint32    `json:"segment_version"`
	ProfileID      string    `json:"profile_id"`
	Transition     string    `json:"transition"`
	OccurredAt     time.Time `json:"occurred_at"`
	CauseID        string    `json:"cause_id,omitempty"`
}

// EachMembership hands every segment transition of p to fn, oldest first.
func (r *Reader) EachMembership(ctx context.Context, p Person, fn func(Membership) error) error {
	q := fmt.Sprintf(`SELECT membership_id, segment_id, segment_version, profile_id, transition, occurred_at, occurred_at_ms, cause_id
		FROM %s.segment_memberships FINAL WHERE %s ORDER BY occurred_at, occurred_at_ms, membership_id`, r.Database, Where("segment_memberships", p))
	rows, err := r.ClickHouse.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("reading segment memberships: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m Membership
		var occMS uint16
		if err := rows.Scan(&m.MembershipID, &m.SegmentID, &m.SegmentVersion, &m.ProfileID, &m.Transition, &m.OccurredAt, &occMS, &m.CauseID); err != nil {
			return fmt.Errorf("reading segment memberships: %w", err)
		}
		m.OccurredAt = ms(m.OccurredAt, occMS)
		if err := fn(m); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading segment memberships: %w", err)
	}
	return nil
}

// Rejection is one rejected_events row.
type Rejection struct {
	RejectionID string    `json:"rejection_id"`
	SourceID    string    `json:"source_id"`
	MessageID   string    `json:"message_id"`
	Stage       string    `json:"stage"`
	Reasons     []string  `json:"reasons"`
	Details     []string  `json:"details"`
	Type        string    `json:"type,omitempty"`
	Event       string    `json:"event,omitempty"`
	AnonymousID string    `json:"anonymous_id,omitempty"`
	UserID      string    `json:"user_id,omitempty"`
	RejectedAt  time.Time `json:"rejected_at"`
	// Raw is the payload as the SDK sent it, when the rejection kept it.
	Raw string `json:"raw,omitempty"`
}

// EachRejection hands every rejection of p's events to fn, oldest first.
func (r *Reader) EachRejection(ctx context.Context, p Person, fn func(Rejection) error) error {
	q := fmt.Sprintf(`SELECT rejection_id, source_id, message_id, stage, reasons, details, type, event, anonymous_id, user_id, rejected_at, rejected_at_ms, raw
		FROM %s.rejected_events FINAL WHERE %s ORDER BY rejected_at, rejected_at_ms, rejection_id`, r.Database, Where("rejected_events", p))
	rows, err := r.ClickHouse.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("reading rejected events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var x Rejection
		var recMS uint16
		if err := rows.Scan(&x.RejectionID, &x.SourceID, &x.MessageID, &x.Stage, &x.Reasons, &x.Details, &x.Type, &x.Event, &x.AnonymousID, &x.UserID, &x.RejectedAt, &recMS, &x.Raw); err != nil {
			return fmt.Errorf("reading rejected events: %w", err)
		}
		x.RejectedAt = ms(x.RejectedAt, recMS)
		if err := fn(x); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading rejected events: %w", err)
	}
	return nil
}

// Identity is one identities row: an identifier and the profile it belongs
// to (identifier_type "$profile_id": a profile merged into profile_id).
type Identity struct {
	Type      string    `json:"identifier_type"`
	Value     string    `json:"identifier_value"`
	ProfileID string    `json:"profile_id"`
	ChangeID  string    `json:"change_id"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EachIdentity hands every identities row of p to fn, by identifier.
func (r *Reader) EachIdentity(ctx context.Context, p Person, fn func(Identity) error) error {
	q := fmt.Sprintf(`SELECT identifier_type, identifier_value, profile_id, change_id, updated_at
		FROM %s.identities FINAL WHERE %s ORDER BY identifier_type, identifier_value`, r.Database, Where("identities", p))
	rows, err := r.ClickHouse.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("reading identities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var x Identity
		if err := rows.Scan(&x.Type, &x.Value, &x.ProfileID, &x.ChangeID, &x.UpdatedAt); err != nil {
			return fmt.Errorf("reading identities: %w", err)
		}
		x.UpdatedAt = x.UpdatedAt.UTC()
		if err := fn(x); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading identities: %w", err)
	}
	return nil
}

// ProfileIDsOf returns the profile ids the identities table holds for
// the identifiers (the loader's copy of the graph): erase falls back to
// it when Redis no longer knows a person.
func (r *Reader) ProfileIDsOf(ctx context.Context, ws string, ids [][2]string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	conds := make([]string, len(ids))
	for i, id := range ids {
		conds[i] = "(identifier_type = " + Quote(id[0]) + " AND identifier_value = " + Quote(id[1]) + ")"
	}
	q := fmt.Sprintf("SELECT DISTINCT profile_id FROM %s.identities FINAL WHERE workspace_id = %s AND %s",
		r.Database, Quote(ws), anyOf(conds...))
	rows, err := r.ClickHouse.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("reading identities: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var pid string
		if err := rows.Scan(&pid); err != nil {
			return nil, fmt.Errorf("reading identities: %w", err)
		}
		out = append(out, pid)
	}
	return out, rows.Err()
}
