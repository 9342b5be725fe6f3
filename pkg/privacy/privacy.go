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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
func (s *Service) Erase(ctx context.Context, workspace string, id identity.Identifier, reason string) (Report, error) {
	now := s.now()
	sum := sha256.Sum256([]byte(workspace + "/" + id.String() + "/" + now.Format(time.RFC3339Nano)))
	rep := Report{RequestID: "erase_" + hex.EncodeToString(sum[:8]), Type: TypeErase, Workspace: workspace, Identifier: id.String(), Reason: reason, RequestedAt: now}
	ids := []identity.Identifier{id}
	var pids []string
	if prof, err := s.Graph.Lookup(ctx, workspace, id); err == nil {
		ids, pids = prof.Identities, append([]string{prof.ID}, prof.Merged...)
	} else if !errors.Is(err, identity.ErrNotFound) {
		return rep, err
	}
	// 1. Refuse their events from now on, before anything is deleted.
	if err := s.Suppression.Add(ctx, workspace, toSuppression(ids)...); err != nil {
		return rep, err
	}
	for _, i := range ids {
		rep.Suppressed = append(rep.Suppressed, i.String())
	}
	// 2. The identity graph.
	if len(pids) > 0 {
		erased, err := s.Graph.Erase(ctx, workspace, pids[0])
		if err != nil {
			return rep, err
		}
		pids = append(pids, erased.ProfileIDs...)
	}
	rep.ProfileIDs = dedupe(pids)
	// 3. Segments: the segmenter exits and forgets the profile.
	if len(rep.ProfileIDs) > 0 && s.Changes != nil {
		c := &profilev1.ProfileChange{ChangeId: rep.RequestID, WorkspaceId: workspace, ProfileId: rep.ProfileIDs[0],
			Kind: profilev1.ChangeKind_CHANGE_KIND_DELETED, OccurredAt: timestamppb.New(now), CauseMessageId: rep.RequestID,
			Detail: "erased on request"}
		v, _ := proto.Marshal(c)
		if err := s.Changes.Produce(ctx, kafka.Message{Topic: s.Topic, Key: []byte(c.ProfileId), Value: v}); err != nil {
			return rep, fmt.Errorf("announcing the erasure: %w", err)
		}
	}
	// 4. Recorded consent.
	if s.Consent != nil {
		if err := s.Consent.Delete(ctx, workspace, toConsent(ids)); err != nil {
			return rep, err
		}
	}
	// 5. The event history.
	tables, err := s.deleteHistory(ctx, person(workspace, rep.ProfileIDs, ids))
	rep.Tables = tables
	if err != nil {
		return rep, err
	}
	rep.CompletedAt, rep.Status = s.now(), "completed"
	if len(rep.ProfileIDs) == 0 {
		rep.Status = "completed: no profile held the identifier; it is suppressed"
	}
	// 6. Audit.
	return rep, s.audit(ctx, rep)
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

func person(ws string, pids []string, ids []identity.Identifier) history.Person {
	p := history.Person{Workspace: ws, ProfileIDs: pids}
	for _, id := range ids {
		p.Identifiers = append(p.Identifiers, [2]string{id.Type, id.Value})
	}
	return p
}

// deleteHistory runs the ClickHouse mutations and waits for them.
func (s *Service) deleteHistory(ctx context.Context, p history.Person) ([]string, error) {
	if s.ClickHouse == nil {
		return nil, nil
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
		var pending uint64
		err := s.ClickHouse.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", s.Database).Scan(&pending)
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

// AuditKey holds a workspace's privacy requests, newest first (capped).
func AuditKey(ws string) string { return "fp:{" + ws + "}:audit" }

const auditCap = 100000

func (s *Service) audit(ctx context.Context, rep Report) error {
	b, _ := json.Marshal(rep)
	pipe := s.Redis.Pipeline()
	pipe.LPush(ctx, AuditKey(rep.Workspace), b)
	pipe.LTrim(ctx, AuditKey(rep.Workspace), 0, auditCap-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

// Audit returns a workspace's most recent privacy requests.
func (s *Service) Audit(ctx context.Context, ws string, n int64) ([]Report, error) {
	vals, err := s.Redis.LRange(ctx, AuditKey(ws), 0, n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	out := make([]Report, 0, len(vals))
	for _, v := range vals {
		var r Report
		if json.Unmarshal([]byte(v), &r) == nil {
			if r.Type == "" {
				r.Type = TypeErase
			}
			out = append(out, r)
		}
	}
	return out, nil
}
