// Package suppression keeps the identifiers of erased people so that replays
// and new events carrying them are refused (reason "suppressed") instead of
// bringing the person back. The API's erase request adds to it; the
// validator checks every event against it.
//
// Redis layout:
//
//	fp:{<workspace>}:suppressed   SET of sha256("<type>:<value>") in hex
//
// Only digests are kept, so the list does not itself hold the erased
// identifiers in clear. (A digest of an email can still be confirmed by
// someone who guesses the email; that is the price of being able to match
// new events without keeping the address.)
package suppression

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Identifier is one typed identifier: user_id, anonymous_id, email, phone, …
type Identifier struct{ Type, Value string }

// List is the Redis-backed suppression list.
type List struct{ rdb redis.UniversalClient }

func New(rdb redis.UniversalClient) *List { return &List{rdb: rdb} }

func key(workspace string) string { return "fp:{" + workspace + "}:suppressed" }

func digest(id Identifier) string {
	sum := sha256.Sum256([]byte(id.Type + ":" + id.Value))
	return hex.EncodeToString(sum[:])
}

// Add suppresses ids in workspace (idempotent).
func (l *List) Add(ctx context.Context, workspace string, ids ...Identifier) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = digest(id)
	}
	if err := l.rdb.SAdd(ctx, key(workspace), members...).Err(); err != nil {
		return fmt.Errorf("adding to suppression list: %w", err)
	}
	return nil
}

// Check reports for each id whether it is suppressed in workspace.
func (l *List) Check(ctx context.Context, workspace string, ids []Identifier) ([]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = digest(id)
	}
	found, err := l.rdb.SMIsMember(ctx, key(workspace), members...).Result()
	if err != nil {
		return nil, fmt.Errorf("checking suppression list: %w", err)
	}
	return found, nil
}
