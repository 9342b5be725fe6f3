package identity

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ApplyBatch applies updates in order in one pipelined round trip. Redis runs
// the scripts one after the other, so an update sees every earlier one of the
// batch, exactly as with Apply; a batch is therefore as correct as single
// calls and far faster. When Redis lost the script (NOSCRIPT after a
// restart) it is loaded and the batch sent again, which the idempotency
// markers make harmless.
func (g *Graph) ApplyBatch(ctx context.Context, us []Update) ([]Result, error) {
	if len(us) == 0 {
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		pipe := g.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(us))
		for i, u := range us {
			if u.Workspace == "" || u.MessageID == "" {
				return nil, fmt.Errorf("update %d needs a workspace and a message id", i)
			}
			cmds[i] = resolveScript.EvalSha(ctx, pipe, []string{Prefix(u.Workspace) + "id"}, g.args(u)...)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && attempt == 0 && strings.Contains(err.Error(), "NOSCRIPT") {
			if err := resolveScript.Load(ctx, g.rdb).Err(); err != nil {
				return nil, fmt.Errorf("loading resolve script: %w", err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("resolving a batch of %d: %w", len(us), err)
		}
		out := make([]Result, len(us))
		for i, c := range cmds {
			s, err := c.Text()
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", us[i].MessageID, err)
			}
			if out[i], err = decodeResult(s); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

// args are resolve.lua's arguments for u. What the bounds refuse before
// Redis (oversized traits, identifiers or traits beyond the per-event
// bounds) is passed along, so the stored result counts it too and a
// redelivery reports the same.
func (g *Graph) args(u Update) []any {
	cfg := g.cfg
	if u.Config != nil {
		cfg = *u.Config
	}
	limits := make([]string, 0, len(cfg.Limits))
	for t, n := range cfg.Limits {
		limits = append(limits, t+"="+strconv.Itoa(n))
	}
	sort.Strings(limits)
	ids := u.Identifiers
	var dropped []string
	if len(ids) > MaxIdentifiers {
		dropped = append(dropped, DropIdentifiers+"="+strconv.Itoa(len(ids)-MaxIdentifiers))
		ids = ids[:MaxIdentifiers]
	}
	keys := make([]string, 0, len(u.Traits))
	oversized := 0
	for k, v := range u.Traits {
		if len(k) > MaxTraitKeyBytes || len(v) > MaxTraitBytes {
			oversized++
			continue
		}
		keys = append(keys, k)
	}
	if oversized > 0 {
		dropped = append(dropped, DropTraitSize+"="+strconv.Itoa(oversized))
	}
	sort.Strings(keys)
	if len(keys) > MaxTraits {
		dropped = append(dropped, DropTraits+"="+strconv.Itoa(len(keys)-MaxTraits))
		keys = keys[:MaxTraits]
	}
	args := make([]any, 0, 15+len(ids)+2*len(keys))
	args = append(args,
		Prefix(u.Workspace), u.MessageID, u.Time.UnixMilli(), newProfileID(), u.Counter, int64(g.cfg.MarkerTTL.Seconds()),
		cfg.DefaultLimit, strings.Join(limits, ","), MaxTraits, MaxCounters, MaxIdentifiers, MaxEdges, MaxBlockedLog,
		strings.Join(dropped, ","), len(ids))
	for _, id := range ids {
		args = append(args, id.String())
	}
	for _, k := range keys {
		args = append(args, k, string(u.Traits[k]))
	}
	return args
}
