// Package privacy carries out people's data-protection requests (GDPR,
// PIPL). Erase removes a person everywhere Firstparty keeps them and makes
// sure they do not come back:
//
//  1. the identifiers go on the workspace's suppression list first, so the
//     validator refuses replays and new events carrying them from then on;
//  2. the profile leaves the identity graph in Redis (pkg/identity Erase:
//     identifiers, traits, counters, evidence, lineage);
//  3. a CHANGE_KIND_DELETED profile change tells the segmenter to make the
//     profile exit its segments and drop its segment state;
//  4. their recorded consent (pkg/consent) is deleted;
//  5. ClickHouse mutations delete the person's events, identities, profile
//     changes, segment memberships and rejected events (their raw payloads
//     may hold personal data), selected as pkg/history selects them, and
//     Erase waits until they finished;
//  6. the request and its outcome are appended to the workspace's audit log.
//
// Erase is idempotent: events that were already past the validator when it
// started can still land, and running it again removes them too.
//
// Export (export.go) writes everything held about a person as one JSON
// document; RecordConsent and ReadConsent (consent.go) record and read a
// person's consent. Every request, of every kind, is appended to the audit
// log (Report.Type tells them apart).
package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/history"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/segstate"
	"github.com/firstparty/firstparty/pkg/stage"
	"github.com/firstparty/firstparty/pkg/suppression"
	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

// Service performs privacy requests.
type Service struct {
	Graph       *identity.Graph
	Suppression *suppression.List
	Redis       redis.UniversalClient
	ClickHouse  driver.Conn
	Database    string
	Consent     *consent.Store  // nil: no recorded consent (erase skips it)
	Segments    *segstate.Store // current segments, for export
	Changes     stage.Sink
	Topic       string // profile changes
	Now         func() time.Time
	Log         *slog.Logger // nil: failures are only returned and audited
	// AuditCap bounds each list of the audit log (0: auditCap).
	AuditCap int64
	// MutationTimeout bounds the wait for ClickHouse's deletes.
	MutationTimeout time.Duration
}

// Request types in Report.Type.
const (
	TypeErase        = "erase"
	TypeExport       = "export"
	TypeConsentWrite = "consent.write"
	TypeConsentRead  = "consent.read"
)

// Report is the outcome of a privacy request, as the audit log keeps it.
// Entries written before Type existed are erasures.
type Report struct {
	RequestID   string    `json:"request_id"`
	Type        string    `json:"type"`
	Workspace   string    `json:"workspace"`
	Identifier  string    `json:"identifier"`
	Reason      string    `json:"reason"`
	ProfileIDs  []string  `json:"profile_ids"`
	Suppressed  []string  `json:"suppressed_identifiers"`
	Tables      []string  `json:"clickhouse_tables"`
	RequestedAt time.Time `json:"requested_at"`
	CompletedAt time.Time `json:"completed_at"`
	Status      string    `json:"status"`
	// Consent requests: the categories recorded or read, and where a
	// recorded decision came from.
	Categories map[string]bool `json:"categories,omitempty"`
	Source     string          `json:"source,omitempty"`
	// Export: rows written per section.
	Rows map[string]int64 `json:"rows,omitempty"`
}

// Erase erases the person holding id in workspace.
//
// The graph is erased early (step 2), so a retry after a later step failed
// could no longer find the person there. Before anything is deleted, the
// person (profile ids and identifiers) is therefore recorded as a pending
// erase under each of their identifiers (PendingKey); a retry — with any of
// those identifiers — resumes from it, and the record is removed only when
// every step completed. A person Redis knows nothing about (an erase cut
// short before this record existed, or a graph lost) is looked up in
// ClickHouse's identities table.
func (s *Service) Erase(ctx context.Context, workspace string, id identity.Identifier, reason string) (Report, error) {
	rep := s.newReport(TypeErase, workspace, id)
	rep.Reason = reason
	rep, err := s.erase(ctx, rep, id)
	if err != nil {
		// A failed erase is audited too (with a generic status: the
		// error may quote identifiers); the caller retries.
		rep.CompletedAt = s.now()
		if s.Log != nil {
			s.Log.Warn("erase failed", "request", rep.RequestID, "workspace", workspace, "status", rep.Status, "err", err)
		}
		if aerr := s.audit(ctx, rep); aerr != nil {
			return rep, errors.Join(err, aerr)
		}
		return rep, err
	}
	return rep, s.audit(ctx, rep)
}

// pending is a started erase, as PendingKey keeps it.
type pending struct {
	RequestID   string   `json:"request_id"`
	ProfileIDs  []string `json:"profile_ids"`
	Identifiers []string `json:"identifiers"`
}

// PendingKey holds a workspace's erasures that have started but not
// completed: a hash, field "type:value" (every identifier of the person) →
// JSON {request_id, profile_ids, identifiers}. Fields are removed when the
// erase completes.
func PendingKey(ws string) string { return "fp:{" + ws + "}:erase:pending" }

func (s *Service) erase(ctx context.Context, rep Report, id identity.Identifier) (Report, error) {
	workspace := rep.Workspace
	step := func(name string) {
		rep.Status = "failed while " + name + "; nothing was restored, send the request again"
	}
	step("finding the person")
	ids := []identity.Identifier{id}
	var pids []string
	prev, err := s.pendingOf(ctx, workspace, id)
	if err != nil {
		return rep, err
	}
	if prev != nil {
		rep.RequestID = prev.RequestID // the same request, resumed
		pids = append(pids, prev.ProfileIDs...)
		for _, x := range prev.Identifiers {
			if t, v, ok := strings.Cut(x, ":"); ok {
				ids = append(ids, identity.Identifier{Type: t, Value: v})
			}
		}
	}
	if prof, err := s.Graph.Lookup(ctx, workspace, id); err == nil {
		ids, pids = append(ids, prof.Identities...), append(append(pids, prof.ID), prof.Merged...)
	} else if !errors.Is(err, identity.ErrNotFound) {
		return rep, err
	}
	if len(pids) == 0 && s.ClickHouse != nil {
		r := &history.Reader{ClickHouse: s.ClickHouse, Database: s.Database}
		found, err := r.ProfileIDsOf(ctx, workspace, [][2]string{{id.Type, id.Value}})
		if err != nil {
			return rep, err
		}
		pids = found
	}
	ids, pids = dedupeIDs(ids), dedupe(pids)
	// 0. Remember the person before anything is deleted.
	step("recording the pending erase")
	if err := s.savePending(ctx, workspace, pending{RequestID: rep.RequestID, ProfileIDs: pids, Identifiers: idStrings(ids)}); err != nil {
		return rep, err
	}
	// 1. Refuse their events from now on, before anything is deleted.
	step("suppressing the identifiers")
	if err := s.Suppression.Add(ctx, workspace, toSuppression(ids)...); err != nil {
		return rep, err
	}
	rep.Suppressed = idStrings(ids)
	// 2. The identity graph.
	step("erasing the identity graph")
	for _, pid := range pids {
		erased, err := s.Graph.Erase(ctx, workspace, pid)
		if err != nil {
			return rep, err
		}
		pids = append(pids, erased.ProfileIDs...)
	}
	rep.ProfileIDs = dedupe(pids)
	// 3. Segments: the segmenter exits and forgets the profile.
	step("announcing the erasure to the segmenter")
	if len(rep.ProfileIDs) > 0 && s.Changes != nil {
		c := &profilev1.ProfileChange{ChangeId: rep.RequestID, WorkspaceId: workspace, ProfileId: rep.ProfileIDs[0],
			Kind: profilev1.ChangeKind_CHANGE_KIND_DELETED, OccurredAt: timestamppb.New(rep.RequestedAt), CauseMessageId: rep.RequestID,
			Detail: "erased on request"}
		v, _ := proto.Marshal(c)
		if err := s.Changes.Produce(ctx, kafka.Message{Topic: s.Topic, Key: []byte(c.ProfileId), Value: v}); err != nil {
			return rep, fmt.Errorf("announcing the erasure: %w", err)
		}
	}
	// 4. Recorded consent.
	step("deleting recorded consent")
	if s.Consent != nil {
		if err := s.Consent.Delete(ctx, workspace, toConsent(ids)); err != nil {
			return rep, err
		}
	}
	// 5. The event history.
	step("deleting the ClickHouse history")
	tables, err := s.deleteHistory(ctx, Person(workspace, rep.ProfileIDs, ids))
	rep.Tables = tables
	if err != nil {
		return rep, err
	}
	step("clearing the pending erase")
	if err := s.clearPending(ctx, workspace, ids); err != nil {
		return rep, err
	}
	rep.CompletedAt, rep.Status = s.now(), "completed"
	if len(rep.ProfileIDs) == 0 {
		rep.Status = "completed: no profile held the identifier; it is suppressed"
	}
	return rep, nil
}

// pendingOf returns the pending erase naming id, or nil.
func (s *Service) pendingOf(ctx context.Context, ws string, id identity.Identifier) (*pending, error) {
	v, err := s.Redis.HGet(ctx, PendingKey(ws), id.String()).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pending erasures: %w", err)
	}
	var p pending
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return nil, nil // unreadable: start afresh from what the graph holds
	}
	return &p, nil
}

func (s *Service) savePending(ctx context.Context, ws string, p pending) error {
	b, _ := json.Marshal(p)
	vals := make([]any, 0, 2*len(p.Identifiers))
	for _, x := range p.Identifiers {
		vals = append(vals, x, string(b))
	}
	if err := s.Redis.HSet(ctx, PendingKey(ws), vals...).Err(); err != nil {
		return fmt.Errorf("recording the pending erase: %w", err)
	}
	return nil
}

func (s *Service) clearPending(ctx context.Context, ws string, ids []identity.Identifier) error {
	if err := s.Redis.HDel(ctx, PendingKey(ws), idStrings(ids)...).Err(); err != nil {
		return fmt.Errorf("clearing the pending erase: %w", err)
	}
	return nil
}

func idStrings(ids []identity.Identifier) []string {
	out := make([]string, len(ids))
	for i, x := range ids {
		out[i] = x.String()
	}
	return out
}

func dedupeIDs(ids []identity.Identifier) []identity.Identifier {
	seen := map[identity.Identifier]bool{}
	var out []identity.Identifier
	for _, x := range ids {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func toSuppression(ids []identity.Identifier) []suppression.Identifier {
	out := make([]suppression.Identifier, len(ids))
	for i, id := range ids {
		out[i] = suppression.Identifier{Type: id.Type, Value: id.Value}
	}
	return out
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func toConsent(ids []identity.Identifier) []consent.Identifier {
	out := make([]consent.Identifier, len(ids))
	for i, id := range ids {
		out[i] = consent.Identifier{Type: id.Type, Value: id.Value}
	}
	return out
}

// Person is whose rows export reads and erase deletes — one function, so
// the two always select the same rows (history.Where, every table of
// history.Tables).
func Person(ws string, pids []string, ids []identity.Identifier) history.Person {
	p := history.Person{Workspace: ws, ProfileIDs: pids}
	for _, id := range ids {
		p.Identifiers = append(p.Identifiers, [2]string{id.Type, id.Value})
	}
	return p
}

// deleteHistory runs the ClickHouse mutations and waits for them: for the
// mutations it started only, not every mutation of the database (another
// workspace's erase, or an operator's ALTER, must not hold this answer).
// ALTER does not answer the id of the mutation it created, so they are
// told apart as the mutations of history.Tables that did not exist before
// and name this workspace.
func (s *Service) deleteHistory(ctx context.Context, p history.Person) ([]string, error) {
	if s.ClickHouse == nil {
		return nil, nil
	}
	before := map[string]bool{}
	rows, err := s.ClickHouse.Query(ctx, "SELECT table, mutation_id FROM system.mutations WHERE database = ? AND table IN ("+quoteList(history.Tables)+")", s.Database)
	if err != nil {
		return nil, fmt.Errorf("listing mutations: %w", err)
	}
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing mutations: %w", err)
		}
		before[t+"/"+id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing mutations: %w", err)
	}
	var tables []string
	for _, t := range history.Tables {
		q := fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE %s", s.Database, t, history.Where(t, p))
		if err := s.ClickHouse.Exec(ctx, q); err != nil {
			return tables, fmt.Errorf("deleting from %s: %w", t, err)
		}
		tables = append(tables, t)
	}
	timeout := s.MutationTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		pending, err := s.pendingMutations(ctx, p.Workspace, before)
		if err != nil {
			return tables, fmt.Errorf("waiting for deletes: %w", err)
		}
		if pending == 0 {
			return tables, nil
		}
		if time.Now().After(deadline) {
			return tables, fmt.Errorf("ClickHouse still deleting after %v (%d mutations pending); they finish on their own", timeout, pending)
		}
		select {
		case <-ctx.Done():
			return tables, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// pendingMutations counts the unfinished mutations of history.Tables that
// are not in before and whose command names workspace ws.
func (s *Service) pendingMutations(ctx context.Context, ws string, before map[string]bool) (int, error) {
	rows, err := s.ClickHouse.Query(ctx, "SELECT table, mutation_id FROM system.mutations WHERE database = ? AND is_done = 0 AND table IN ("+
		quoteList(history.Tables)+") AND position(command, ?) > 0", s.Database, history.Quote(ws))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err != nil {
			return 0, err
		}
		if !before[t+"/"+id] {
			n++
		}
	}
	return n, rows.Err()
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = history.Quote(v)
	}
	return strings.Join(q, ",")
}

// AuditKey holds a workspace's erasures, newest first (capped at
// auditCap), and the entries written before requests had a Type. Exports
// and consent requests have lists of their own (auditKey), each capped on
// its own, so a key that may only read consent cannot push erasure
// records out of the log by reading consent often.
func AuditKey(ws string) string { return "fp:{" + ws + "}:audit" }

// auditKeys are every list of a workspace's audit log.
func auditKeys(ws string) []string {
	return []string{AuditKey(ws), AuditKey(ws) + ":export", AuditKey(ws) + ":consent"}
}

// auditKey is the list holding requests of type typ.
func auditKey(ws, typ string) string {
	switch typ {
	case TypeExport:
		return AuditKey(ws) + ":export"
	case TypeConsentRead, TypeConsentWrite:
		return AuditKey(ws) + ":consent"
	}
	return AuditKey(ws)
}

const auditCap = 100000

func (s *Service) audit(ctx context.Context, rep Report) error {
	b, _ := json.Marshal(rep)
	key := auditKey(rep.Workspace, rep.Type)
	pipe := s.Redis.Pipeline()
	pipe.LPush(ctx, key, b)
	limit := s.AuditCap
	if limit <= 0 {
		limit = auditCap
	}
	pipe.LTrim(ctx, key, 0, limit-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

// Audit returns a workspace's most recent privacy requests, of every
// type, newest first.
func (s *Service) Audit(ctx context.Context, ws string, n int64) ([]Report, error) {
	var out []Report
	for _, key := range auditKeys(ws) {
		vals, err := s.Redis.LRange(ctx, key, 0, n-1).Result()
		if err != nil {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
		for _, v := range vals {
			var r Report
			if json.Unmarshal([]byte(v), &r) == nil {
				if r.Type == "" {
					r.Type = TypeErase
				}
				out = append(out, r)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].RequestedAt.After(out[j].RequestedAt) })
	if int64(len(out)) > n {
		out = out[:n]
	}
	if out == nil {
		out = []Report{}
	}
	return out, nil
}
