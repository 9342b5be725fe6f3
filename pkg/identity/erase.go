package identity

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
)

//go:embed erase.lua
var eraseLua string

var eraseScript = redis.NewScript(eraseLua)

// Erased is what Erase removed.
type Erased struct {
	Identifiers []Identifier
	// ProfileIDs are the profile and every profile merged into it.
	ProfileIDs []string
}

// Erase removes a profile from the graph, atomically: its identifiers
// (they resolve to nothing afterwards), traits, counters, evidence, the
// per-identifier contributions, denied links, and the forwarding records
// of the profiles merged into it. Erasing a profile that no longer exists
// removes nothing and is not an error.
func (g *Graph) Erase(ctx context.Context, workspace, pid string) (Erased, error) {
	out, err := eraseScript.Run(ctx, g.rdb, []string{Prefix(workspace) + "id"}, Prefix(workspace), pid).Text()
	if err != nil {
		return Erased{}, fmt.Errorf("erasing profile %s: %w", pid, err)
	}
	var r struct {
		IDs      flexList[string] `json:"ids"`
		Profiles flexList[string] `json:"profiles"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return Erased{}, fmt.Errorf("decoding erase result: %w", err)
	}
	return Erased{Identifiers: parseIDs(r.IDs), ProfileIDs: r.Profiles}, nil
}
