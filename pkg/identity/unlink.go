package identity

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

//go:embed unlink.lua
var unlinkLua string

var unlinkScript = redis.NewScript(unlinkLua)

// Split is what Unlink did.
type Split struct {
	// Status: "split" (the profile fell apart), "still_linked" (other
	// evidence still joins the two identifiers; the links between them were
	// cut, cut the others too), "not_linked" (they are not on one profile).
	Status string
	// ProfileID keeps the first identifier's side.
	ProfileID string
	Kept      []Identifier
	// Pieces are the new profiles that split off, with their identifiers.
	Pieces []Piece
}

// Piece is one new profile of a split.
type Piece struct {
	ProfileID   string
	Identifiers []Identifier
}

// ErrSameIdentifier is Unlink asked to cut an identifier from itself.
var ErrSameIdentifier = errors.New("unlink needs two different identifiers")

// Unlink undoes a wrong link: it removes the evidence that ties a and b
// together, forbids linking them again (an event carrying both, or a merge
// that would join them, is blocked from then on), and recomputes the
// profile from the evidence that remains. When nothing else ties them, the
// profile splits: a's side keeps the profile id, every other connected
// piece becomes a profile of its own, and each side's traits, counters and
// first/last seen are rebuilt from what events brought to its own
// identifiers. Atomic with concurrent resolves (one script); calling it
// again changes nothing ("not_linked").
//
// Contributions are kept per identifier from the version that introduced
// Unlink on; a profile built before that splits its identifiers correctly
// but rebuilds only what was recorded since.
func (g *Graph) Unlink(ctx context.Context, workspace string, a, b Identifier, reason string, now time.Time) (Split, error) {
	if a == b {
		return Split{}, ErrSameIdentifier
	}
	args := []any{Prefix(workspace), a.String(), b.String(), now.UnixMilli(), reason}
	// Enough fresh ids for the worst case: a profile holds a bounded number
	// of identifiers (the per-type limits).
	for i := 0; i < 64; i++ {
		args = append(args, newProfileID())
	}
	out, err := unlinkScript.Run(ctx, g.rdb, []string{Prefix(workspace) + "id"}, args...).Text()
	if err != nil {
		return Split{}, fmt.Errorf("unlinking %s and %s: %w", a, b, err)
	}
	var r struct {
		Status  string           `json:"status"`
		Profile string           `json:"profile"`
		Kept    flexList[string] `json:"kept"`
		Split   flexList[struct {
			Profile string           `json:"profile"`
			IDs     flexList[string] `json:"ids"`
		}] `json:"split"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return Split{}, fmt.Errorf("decoding unlink result: %w", err)
	}
	s := Split{Status: r.Status, ProfileID: r.Profile, Kept: parseIDs(r.Kept)}
	for _, p := range r.Split {
		s.Pieces = append(s.Pieces, Piece{ProfileID: p.Profile, Identifiers: parseIDs(p.IDs)})
	}
	return s, nil
}

func parseIDs(ss []string) []Identifier {
	out := make([]Identifier, 0, len(ss))
	for _, s := range ss {
		t, v, _ := strings.Cut(s, ":")
		out = append(out, Identifier{t, v})
	}
	return out
}

// Changes are the profile changes a split announces on
// cdp.profiles.changes: one CHANGE_KIND_SPLIT for the profile that kept its
// id and one for every new piece, with deterministic ids (the same split,
// the same ids) and each other as related profiles.
func (s Split) Changes(workspace, cause string, at time.Time) []*profilev1.ProfileChange {
	if s.Status != "split" {
		return nil
	}
	all := []string{s.ProfileID}
	for _, p := range s.Pieces {
		all = append(all, p.ProfileID)
	}
	change := func(pid string, ids []Identifier) *profilev1.ProfileChange {
		sum := sha256.Sum256([]byte(workspace + "/" + cause + "/split/" + pid))
		c := &profilev1.ProfileChange{ChangeId: hex.EncodeToString(sum[:16]), WorkspaceId: workspace, ProfileId: pid,
			Kind: profilev1.ChangeKind_CHANGE_KIND_SPLIT, OccurredAt: timestamppb.New(at), CauseMessageId: cause,
			Detail: "an operator removed a wrong identity link; the profile was recomputed from the remaining evidence"}
		for _, o := range all {
			if o != pid {
				c.RelatedProfileIds = append(c.RelatedProfileIds, o)
			}
		}
		for _, id := range ids {
			c.IdentitiesAdded = append(c.IdentitiesAdded, &profilev1.Identity{Type: id.Type, Value: id.Value})
		}
		return c
	}
	out := []*profilev1.ProfileChange{change(s.ProfileID, s.Kept)}
	for _, p := range s.Pieces {
		out = append(out, change(p.ProfileID, p.Identifiers))
	}
	return out
}
