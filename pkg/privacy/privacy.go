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
//  4. ClickHouse mutations delete the person's events, identities, profile
//     changes and segment memberships, and Erase waits until they finished;
//  5. the request and its outcome are appended to the workspace's audit log.
//
// Erase is idempotent: events that were already past the validator when it
// started can still land, and running it again removes them too.
package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/firstparty/firstparty/pkg/identity"
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
	Changes     stage.Sink
	Topic       string // profile changes
	Now         func() time.Time
	// MutationTimeout bounds the wait for ClickHouse's deletes.
	MutationTimeout time.Duration
}

// Report is the outcome of an erase request.
type Report struct {
	RequestID   string    `json:"request_id"`
	Workspace   string    `json:"workspace"`
	Identifier  string    `json:"identifier"`
	Reason      string    `json:"reason"`
	ProfileIDs  []string  `json:"profile_ids"`
	Suppressed  []string  `json:"suppressed_identifiers"`
	Tables      []string  `json:"clickhouse_tables"`
	RequestedAt time.Time `json:"requested_at"`
	CompletedAt time.Time `json:"completed_at"`
	Status      string    `json:"status"`
}

// Erase erases the person holding id in workspace.
func (s *Service) Erase(ctx context.Context, workspace string, id identity.Identifier, reason string) (Report, error) {
	now := s.now()
	sum := sha256.Sum256([]byte(workspace + "/" + id.String() + "/" + now.Format(time.RFC3339Nano)))
	rep := Report{RequestID: "erase_" + hex.EncodeToString(sum[:8]), Workspace: workspace, Identifier: id.String(), Reason: reason, RequestedAt: now}
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
	// 4. The event history.
	tables, err := s.deleteHistory(ctx, workspace, rep.ProfileIDs, ids)
	rep.Tables = tables
	if err != nil {
		return rep, err
	}
	rep.CompletedAt, rep.Status = s.now(), "completed"
	if len(rep.ProfileIDs) == 0 {
		rep.Status = "completed: no profile held the identifier; it is suppressed"
	}
	// 5. Audit.
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

// deleteHistory runs the ClickHouse mutations and waits for them.
func (s *Service) deleteHistory(ctx context.Context, ws string, pids []string, ids []identity.Identifier) ([]string, error) {
	if s.ClickHouse == nil {
		return nil, nil
	}
	var users, anons []string
	for _, id := range ids {
		switch id.Type {
		case "user_id":
			users = append(users, id.Value)
		case "anonymous_id":
			anons = append(anons, id.Value)
		}
	}
	list := func(vs []string) string {
		if len(vs) == 0 {
			return "''"
		}
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = quote(v)
		}
		return strings.Join(q, ",")
	}
	w := "workspace_id = " + quote(ws)
	byProfile := "profile_id IN (" + list(pids) + ")"
	stmts := map[string]string{
		"events":              w + " AND (" + byProfile + " OR user_id IN (" + list(users) + ") OR anonymous_id IN (" + list(anons) + "))",
		"identities":          w + " AND (" + byProfile + " OR (identifier_type = '$profile_id' AND identifier_value IN (" + list(pids) + ")))",
		"profile_changes":     w + " AND " + byProfile,
		"segment_memberships": w + " AND " + byProfile,
	}
	var tables []string
	for _, t := range []string{"events", "identities", "profile_changes", "segment_memberships"} {
		q := fmt.Sprintf("ALTER TABLE %s.%s DELETE WHERE %s", s.Database, t, stmts[t])
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

// quote makes a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
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
		return nil, err
	}
	out := make([]Report, 0, len(vals))
	for _, v := range vals {
		var r Report
		if json.Unmarshal([]byte(v), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}
