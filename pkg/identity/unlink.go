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

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	profilev1 "github.com/firstparty/firstparty/proto/profile/v1"
)

//go:embed unlink.lua
var unlinkLua string

var unlinkScript = redis.NewScript(unlinkLua)

// Statuses of a Split.
const (
	// SplitDone: nothing else tied the two identifiers; the profile split.
	SplitDone = "split"
	// SplitStillLinked: other evidence still joins them. The edges between
	// them were cut and the link is denied from now on, but the profile is
	// whole; Path shows one chain of edges that still joins them.
	SplitStillLinked = "still_linked"
	// SplitNotLinked: they are not on one profile (also the answer to a
	// second call for a link already cut).
	SplitNotLinked = "not_linked"
)

// Split is what Unlink did.
type Split struct {
	Status string // Split…
	// ProfileID keeps the first identifier's side; Version is its version
	// after the split.
	ProfileID string
	Version   int64
	Kept      []Identifier
	// Pieces are the new profiles that split off, with their identifiers.
	Pieces []Piece
	// Path (still_linked) is one chain of evidence edges, each
	// "<type:value>|<type:value>", that still joins the two identifiers.
	Path []string
}

// Piece is one new profile of a split.
type Piece struct {
	ProfileID   string
	Version     int64
	Identifiers []Identifier
}

// ErrSameIdentifier is Unlink asked to cut an identifier from itself.
var ErrSameIdentifier = errors.New("unlink needs two different identifiers")

// Unlink undoes a wrong link: it removes the evidence that ties a and b
// together, forbids linking them again (an event carrying both, or a merge
// that would join them, is blocked from then on, until Allow), and
// recomputes the profile from the evidence that remains. When nothing else
// ties them, the profile splits: a's side keeps the profile id, every other
// connected piece becomes a profile of its own, each identifier resolves to
// its piece, and each piece's traits, counters and first/last seen are
// rebuilt from what events brought to its own identifiers; profiles merged
// into it earlier follow the identifier they held. Atomic with concurrent
// resolves (one script). A call go-redis retries after a network error
// answers the same; calling it again changes nothing (SplitNotLinked).
// Announce the result with Split.Changes.
func (g *Graph) Unlink(ctx context.Context, workspace string, a, b Identifier, reason string, now time.Time) (Split, error) {
	if a == b {
		return Split{}, ErrSameIdentifier
	}
	args := []any{Prefix(workspace), a.String(), b.String(), now.UnixMilli(), reason, uuid.NewString(), MaxTraits, MaxCounters}
	// Enough fresh ids for the worst case: a profile holds at most
	// MaxIdentifiers identifiers (the script derives more if one ever holds
	// more).
	for i := 0; i < MaxIdentifiers; i++ {
		args = append(args, newProfileID())
	}
	out, err := unlinkScript.Run(ctx, g.rdb, []string{Prefix(workspace) + "id"}, args...).Text()
	if err != nil {
		return Split{}, fmt.Errorf("unlinking %s and %s: %w", a, b, err)
	}
	var r struct {
		Status  string           `json:"status"`
		Profile string           `json:"profile"`
		Version int64            `json:"version"`
		Kept    flexList[string] `json:"kept"`
		Path    flexList[string] `json:"path"`
		Split   flexList[struct {
			Profile string           `json:"profile"`
			Version int64            `json:"version"`
			IDs     flexList[string] `json:"ids"`
		}] `json:"split"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return Split{}, fmt.Errorf("decoding unlink result: %w", err)
	}
	s := Split{Status: r.Status, ProfileID: r.Profile, Version: r.Version, Kept: parseIDs(r.Kept), Path: r.Path}
	for _, p := range r.Split {
		s.Pieces = append(s.Pieces, Piece{ProfileID: p.Profile, Version: p.Version, Identifiers: parseIDs(p.IDs)})
	}
	return s, nil
}

// Allow lifts an Unlink's denial between a and b, so a later event carrying
// both (or a merge joining them) links them again; it links nothing
// itself. It reports whether there was a denial to lift.
func (g *Graph) Allow(ctx context.Context, workspace string, a, b Identifier) (bool, error) {
	p := Prefix(workspace)
	pipe := g.rdb.TxPipeline()
	ra := pipe.SRem(ctx, p+"deny:"+a.String(), b.String())
	rb := pipe.SRem(ctx, p+"deny:"+b.String(), a.String())
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("allowing %s and %s: %w", a, b, err)
	}
	return ra.Val()+rb.Val() > 0, nil
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
	if s.Status != SplitDone {
		return nil
	}
	all := []string{s.ProfileID}
	for _, p := range s.Pieces {
		all = append(all, p.ProfileID)
	}
	change := func(pid string, version int64, ids []Identifier) *profilev1.ProfileChange {
		sum := sha256.Sum256([]byte(workspace + "/" + cause + "/split/" + pid))
		c := &profilev1.ProfileChange{ChangeId: hex.EncodeToString(sum[:16]), WorkspaceId: workspace, ProfileId: pid,
			Kind: profilev1.ChangeKind_CHANGE_KIND_SPLIT, OccurredAt: timestamppb.New(at), CauseMessageId: cause, Version: uint64(version),
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
	out := []*profilev1.ProfileChange{change(s.ProfileID, s.Version, s.Kept)}
	for _, p := range s.Pieces {
		out = append(out, change(p.ProfileID, p.Version, p.Identifiers))
	}
	return out
}
