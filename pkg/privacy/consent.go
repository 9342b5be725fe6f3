package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/firstparty/firstparty/pkg/consent"
	"github.com/firstparty/firstparty/pkg/identity"
	"github.com/firstparty/firstparty/pkg/suppression"
)

// ConsentAnswer is a person's consent after a request: the merged decisions
// of every identifier on their profile (or of the identifier alone, when no
// profile holds it yet).
type ConsentAnswer struct {
	RequestID  string        `json:"request_id"`
	Identifier string        `json:"identifier"`
	ProfileID  string        `json:"profile_id,omitempty"`
	Consent    consent.State `json:"consent"`
	// Applied (on a write): the categories this request changed; the
	// others already held a newer decision and kept it.
	Applied []string `json:"applied,omitempty"`
}

// ErrSuppressed: the identifier was erased (it is on the suppression
// list), so no consent is recorded against it.
var ErrSuppressed = errors.New("the identifier was erased on request and is suppressed; consent is not recorded for it")

// RecordConsent records u (normalized, see consent.Update) against id and
// answers the person's consent afterwards. Consent may be recorded for an
// identifier no profile holds yet (a sign-up form before the first event).
func (s *Service) RecordConsent(ctx context.Context, ws string, id identity.Identifier, u consent.Update) (ConsentAnswer, error) {
	if s.Consent == nil {
		return ConsentAnswer{}, errors.New("recording consent: no consent store")
	}
	rep := s.newReport(TypeConsentWrite, ws, id)
	rep.Categories, rep.Source = u.Categories, u.Source
	if s.Suppression != nil {
		// An erased person's identifiers are suppressed: consent recorded
		// against one would be data about them kept after the erasure.
		sup, err := s.Suppression.Check(ctx, ws, []suppression.Identifier{{Type: id.Type, Value: id.Value}})
		if err != nil {
			return ConsentAnswer{}, fmt.Errorf("recording consent: %w", err)
		}
		if sup[0] {
			return ConsentAnswer{}, ErrSuppressed
		}
	}
	applied, err := s.Consent.Record(ctx, ws, consent.Identifier{Type: id.Type, Value: id.Value}, u)
	if err != nil {
		return ConsentAnswer{}, fmt.Errorf("recording consent: %w", err)
	}
	ans, err := s.readConsent(ctx, ws, id, rep.RequestID)
	if err != nil {
		return ConsentAnswer{}, err
	}
	ans.Applied = applied
	if ans.ProfileID != "" {
		rep.ProfileIDs = []string{ans.ProfileID}
	}
	rep.CompletedAt, rep.Status = s.now(), fmt.Sprintf("completed: %d of %d categories changed", len(applied), len(u.Categories))
	return ans, s.audit(ctx, rep)
}

// ReadConsent answers a person's consent.
func (s *Service) ReadConsent(ctx context.Context, ws string, id identity.Identifier) (ConsentAnswer, error) {
	if s.Consent == nil {
		return ConsentAnswer{}, errors.New("reading consent: no consent store")
	}
	rep := s.newReport(TypeConsentRead, ws, id)
	ans, err := s.readConsent(ctx, ws, id, rep.RequestID)
	if err != nil {
		return ConsentAnswer{}, err
	}
	if ans.ProfileID != "" {
		rep.ProfileIDs = []string{ans.ProfileID}
	}
	rep.Categories = ans.Consent.Granted()
	rep.CompletedAt, rep.Status = s.now(), "completed"
	return ans, s.audit(ctx, rep)
}

func (s *Service) readConsent(ctx context.Context, ws string, id identity.Identifier, requestID string) (ConsentAnswer, error) {
	ans := ConsentAnswer{RequestID: requestID, Identifier: id.String()}
	ids := []identity.Identifier{id}
	prof, err := s.Graph.Lookup(ctx, ws, id)
	switch {
	case err == nil:
		ans.ProfileID, ids = prof.ID, prof.Identities
	case !errors.Is(err, identity.ErrNotFound):
		return ans, fmt.Errorf("reading consent: %w", err)
	}
	st, err := s.Consent.Read(ctx, ws, toConsent(withID(ids, id)))
	if err != nil {
		return ans, err
	}
	ans.Consent = st
	return ans, nil
}

// withID is ids with id among them (a profile's identities normally hold
// it; a race with an unlink may not).
func withID(ids []identity.Identifier, id identity.Identifier) []identity.Identifier {
	for _, x := range ids {
		if x == id {
			return ids
		}
	}
	return append(append([]identity.Identifier(nil), ids...), id)
}

func (s *Service) newReport(typ, ws string, id identity.Identifier) Report {
	now := s.now()
	sum := sha256.Sum256([]byte(typ + "/" + ws + "/" + id.String() + "/" + now.Format(time.RFC3339Nano)))
	prefix := map[string]string{TypeErase: "erase_", TypeExport: "export_", TypeConsentWrite: "consent_", TypeConsentRead: "consent_"}[typ]
	return Report{RequestID: prefix + hex.EncodeToString(sum[:8]), Type: typ, Workspace: ws, Identifier: id.String(), RequestedAt: now}
}
