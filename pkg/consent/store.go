package consent

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store keeps recorded consent in Redis, under the workspace hash tag:
//
//	fp:{ws}:consent:<type>:<value>   HASH category → JSON {"granted": bool,
//	                                 "at": ms of the decision, "source": "…"}
//
// One hash per identifier the consent was recorded against (not per
// profile: profile ids change with merges and splits, identifiers do not).
// A category is only overwritten by a decision at least as new (record.lua),
// so two requests racing, or an old record replayed, cannot undo a newer
// decision. Erase (pkg/privacy) deletes the hashes of the person's
// identifiers.
type Store struct{ rdb redis.UniversalClient }

// NewStore returns the Redis-backed consent store.
func NewStore(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// Identifier is one typed identifier ("email", "a@b.c").
type Identifier struct{ Type, Value string }

func (i Identifier) String() string { return i.Type + ":" + i.Value }

// Key is the hash holding the consent recorded against id.
func Key(ws string, id Identifier) string { return "fp:{" + ws + "}:consent:" + id.String() }

//go:embed record.lua
var recordLua string

var recordScript = redis.NewScript(recordLua)

// MaxStoredCategories bounds the categories one identifier holds, so a
// client cannot grow a person's consent record without limit (each read
// merges every record of a profile).
const MaxStoredCategories = 200

// ErrTooManyCategories: the update would take an identifier over
// MaxStoredCategories; nothing was written.
var ErrTooManyCategories = errors.New("too many consent categories")

type stored struct {
	Granted bool   `json:"granted"`
	At      int64  `json:"at"`
	Source  string `json:"source"`
}

// Record stores a normalized update against id and returns the categories
// it changed; the others already held a newer decision.
func (s *Store) Record(ctx context.Context, ws string, id Identifier, u Update) (applied []string, err error) {
	args := []any{u.At.UnixMilli(), MaxStoredCategories}
	for c, g := range u.Categories {
		b, _ := json.Marshal(stored{Granted: g, At: u.At.UnixMilli(), Source: u.Source})
		args = append(args, c, string(b))
	}
	res, err := recordScript.Run(ctx, s.rdb, []string{Key(ws, id)}, args...).StringSlice()
	if err != nil && strings.HasPrefix(err.Error(), "TOOMANY") {
		return nil, fmt.Errorf("%w: %s already holds categories and this update adds more than the %d an identifier may hold", ErrTooManyCategories, id.Type, MaxStoredCategories)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("recording consent of %s: %w", id, err)
	}
	return res, nil
}

// Read returns the person's consent: the decisions recorded against any of
// ids, merged (newest per category wins).
func (s *Store) Read(ctx context.Context, ws string, ids []Identifier) (State, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, Key(ws, id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("reading consent: %w", err)
		}
	}
	states := make([]State, 0, len(ids))
	for i, id := range ids {
		st := State{}
		for c, v := range cmds[i].Val() {
			var d stored
			if err := json.Unmarshal([]byte(v), &d); err != nil {
				return nil, fmt.Errorf("reading consent of %s, category %s: %w", id, c, err)
			}
			st[c] = Decision{Granted: d.Granted, At: time.UnixMilli(d.At).UTC(), Source: d.Source, Identifier: id.String()}
		}
		states = append(states, st)
	}
	return Merge(states...), nil
}

// Delete removes the consent recorded against ids (erasure).
func (s *Store) Delete(ctx context.Context, ws string, ids []Identifier) error {
	if len(ids) == 0 {
		return nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = Key(ws, id)
	}
	// One command: the keys share the workspace's hash tag, so one slot.
	if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("deleting consent: %w", err)
	}
	return nil
}
