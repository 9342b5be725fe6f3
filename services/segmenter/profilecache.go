package main

import (
	"container/list"
	"encoding/json"
	"sort"
	"sync"
)

// profileCache keeps the traits and identities of recently handled
// profiles, each with the profile version they hold through, so that a
// batch whose events the stitcher marks unchanged reads only the
// profile's own hash (times, version, merge forwarding: one small read)
// instead of also its traits and identities. The versions make it safe: a
// profile's version counts every change applied to it, one each, and
// every change of traits or identities (an event, a merge, an unlink)
// moves it. An event of version through+1 that changed nothing extends
// what the copy holds through; one of a version already covered is
// evaluated against the copy, a state at least as recent as the event
// (the profile as read now would be too); anything else — a change, a
// version further on, a profile merged away or gone — reads the profile
// in full again.
type profileCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List // of *cachedProfile, most recent first
	m   map[profileKey]*list.Element
	// hits and misses count profiles, for metrics.
	hits, misses int64
}

type profileKey struct{ ws, pid string }

type cachedProfile struct {
	key        profileKey
	through    int64 // the profile version the copy holds through
	traits     map[string]json.RawMessage
	identities []string
}

func newProfileCache(max int) *profileCache {
	return &profileCache{max: max, ll: list.New(), m: map[profileKey]*list.Element{}}
}

// lookup returns the cached copy and the version it would hold through
// after the given events, if the copy covers them: every event left the
// profile unchanged and carries its version, and those beyond the copy
// follow it one by one. nil when not.
func (c *profileCache) lookup(k profileKey, versions []int64) (*cachedProfile, int64) {
	if c == nil {
		return nil, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		c.misses++
		return nil, 0
	}
	cp := e.Value.(*cachedProfile)
	vs := append([]int64(nil), versions...)
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	through := cp.through
	for _, v := range vs {
		switch {
		case v <= 0:
			c.misses++
			return nil, 0
		case v <= through:
		case v == through+1:
			through = v
		default:
			c.misses++
			return nil, 0
		}
	}
	c.hits++
	c.ll.MoveToFront(e)
	return cp, through
}

// extend records that k's copy now holds through version through.
func (c *profileCache) extend(k profileKey, through int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		if cp := e.Value.(*cachedProfile); through > cp.through {
			cp.through = through
		}
	}
}

// put keeps a profile as read in full at version through.
func (c *profileCache) put(k profileKey, through int64, traits map[string]json.RawMessage, identities []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		cp := e.Value.(*cachedProfile)
		cp.through, cp.traits, cp.identities = through, traits, identities
		c.ll.MoveToFront(e)
		return
	}
	c.m[k] = c.ll.PushFront(&cachedProfile{key: k, through: through, traits: traits, identities: identities})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*cachedProfile).key)
	}
}

func (c *profileCache) forget(k profileKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.Remove(e)
		delete(c.m, k)
	}
}

func (c *profileCache) stats() (hits, misses int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses
}
