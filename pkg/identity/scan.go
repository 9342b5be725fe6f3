package identity

import (
	"context"
	"fmt"
)

// ScanProfiles pages through the ids of a workspace's live profiles (not
// the merged-away ones), from the workspace's profile index. Start with
// cursor 0; a returned cursor of 0 means the scan is complete. Like Redis
// SSCAN, a profile that exists throughout is returned at least once.
func (g *Graph) ScanProfiles(ctx context.Context, workspace string, cursor uint64, count int64) ([]string, uint64, error) {
	pids, next, err := g.rdb.SScan(ctx, Prefix(workspace)+"profiles", cursor, "", count).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("scanning profiles of %s: %w", workspace, err)
	}
	return pids, next, nil
}
