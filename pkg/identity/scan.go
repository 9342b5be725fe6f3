package identity

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ScanProfiles pages through the ids of a workspace's profiles (merged-away
// ones included: callers follow merges with Profile). Start with cursor 0;
// a returned cursor of 0 means the scan is complete. Like Redis SCAN, a
// profile that exists throughout is returned at least once. In Redis
// Cluster it scans the node that owns the workspace's slot.
func (g *Graph) ScanProfiles(ctx context.Context, workspace string, cursor uint64, count int64) ([]string, uint64, error) {
	p := Prefix(workspace) + "p:"
	var node redis.Cmdable = g.rdb
	if cc, ok := g.rdb.(*redis.ClusterClient); ok {
		// SCAN walks one node: the one that owns the workspace's slot.
		n, err := cc.MasterForKey(ctx, p)
		if err != nil {
			return nil, 0, fmt.Errorf("finding the node of %s: %w", workspace, err)
		}
		node = n
	}
	keys, next, err := node.Scan(ctx, cursor, p+"*", count).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("scanning profiles of %s: %w", workspace, err)
	}
	var pids []string
	for _, k := range keys {
		if pid := strings.TrimPrefix(k, p); !strings.Contains(pid, ":") {
			pids = append(pids, pid)
		}
	}
	return pids, next, nil
}
