// Package cache is a fixed-capacity, expiring cache keyed by a
// CredentialDigest (a per-process keyed hash of a credential, not an API key
// hash), built for request paths read far more than written, on several
// cores. keylens's sidecar and Tyk plugin share it.
package cache

import (
	"sync"
	"sync/atomic"
)

// Cache is a fixed-capacity cache of values keyed by a CredentialDigest,
// built for a request path: a hit takes one read lock of one shard's stripe,
// probes one map and sets a reference bit; nothing is moved, so concurrent hits do not
// serialize and a hit touches as little memory as possible. Entries expire
// after the TTL; when full, an insert evicts with the CLOCK algorithm (an
// approximation of LRU that gives recently used entries a second chance).
//
// Values live inline in the cache's nodes and are handed out by pointer;
// callers must not modify them.
type Cache[V any] struct {
	shards  [cacheShards]cacheShard[V]
	ttl     int64 // nanoseconds
	onEvict func(key CredentialDigest, v *V)

	// mu orders every change: the ring, the free list and, under it, the
	// shards' maps. Reads take only a shard's read lock.
	mu   sync.Mutex
	ring []*cacheNode[V] // CLOCK ring; nil slots are free
	free []int32         // free slots in ring
	hand int
	size int // capacity
	n    atomic.Int64
}

const cacheShards = 64 // a power of two

// stripes is the number of read-lock stripes per shard.
const stripes = 8 // a power of two

// A shard's map is guarded by one read-write lock per stripe: a reader
// takes the read lock of its stripe only (chosen by its connection), so
// that even readers of one hot key on different cores never write to the
// same cache line; a writer takes every stripe's lock.
type cacheShard[V any] struct {
	locks [stripes]struct {
		sync.RWMutex
		_ [40]byte
	}
	m map[CredentialDigest]*cacheNode[V]
}

func (s *cacheShard[V]) lock() {
	for i := range s.locks {
		s.locks[i].Lock()
	}
}

func (s *cacheShard[V]) unlock() {
	for i := range s.locks {
		s.locks[i].Unlock()
	}
}

// A hit reads the key, the deadline, the reference bit and the start of
// the value: they come first, to share a cache line.
type cacheNode[V any] struct {
	key      CredentialDigest
	deadline int64 // UnixNano after which the node is stale
	ref      atomic.Bool
	slot     int32
	val      V
}

// New returns a cache of size entries (at least 1) that live for ttl
// nanoseconds. onEvict, if not nil, is called for every entry that leaves
// the cache other than by being replaced: evicted, removed, expired or
// purged. It runs under the cache's lock and must not call the cache.
func New[V any](size int, ttl int64, onEvict func(CredentialDigest, *V)) *Cache[V] {
	c := &Cache[V]{size: max(size, 1), ttl: ttl, onEvict: onEvict}
	for i := range c.shards {
		c.shards[i].m = map[CredentialDigest]*cacheNode[V]{}
	}
	return c
}

func (c *Cache[V]) shard(key *CredentialDigest) *cacheShard[V] {
	return &c.shards[key[0]&(cacheShards-1)]
}

// Get returns the value cached under key if it is fresh at now (UnixNano).
// hint spreads concurrent readers over the shard's lock stripes: callers
// on different cores should pass different hints (a connection id).
func (c *Cache[V]) Get(key CredentialDigest, now int64, hint uint64) (*V, bool) {
	s := c.shard(&key)
	l := &s.locks[hint&(stripes-1)]
	l.RLock()
	n := s.m[key]
	l.RUnlock()
	if n == nil {
		return nil, false
	}
	if now >= n.deadline {
		c.mu.Lock()
		c.removeLocked(key, n)
		c.mu.Unlock()
		return nil, false
	}
	if !n.ref.Load() { // a hot entry's line is only read
		n.ref.Store(true)
	}
	return &n.val, true
}

// Add caches v under key from now (UnixNano), replacing any value there.
func (c *Cache[V]) Add(key CredentialDigest, v V, now int64) {
	n := &cacheNode[V]{val: v, key: key, deadline: now + c.ttl}
	s := c.shard(&key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := s.m[key]; old != nil {
		n.slot = old.slot
	} else {
		n.slot = c.slotLocked()
		c.n.Add(1)
	}
	c.ring[n.slot] = n
	s.lock()
	s.m[key] = n
	s.unlock()
}

// slotLocked returns a free ring slot, evicting when the cache is full.
func (c *Cache[V]) slotLocked() int32 {
	if k := len(c.free); k > 0 {
		slot := c.free[k-1]
		c.free = c.free[:k-1]
		return slot
	}
	if len(c.ring) < c.size {
		c.ring = append(c.ring, nil)
		return int32(len(c.ring) - 1)
	}
	// The ring is full and has no free slot, so every slot holds a node.
	// One turn clears every reference bit, so this ends within two.
	for {
		n := c.ring[c.hand]
		c.hand = (c.hand + 1) % len(c.ring)
		if n.ref.Load() {
			n.ref.Store(false)
			continue
		}
		c.removeLocked(n.key, n)
		k := len(c.free) - 1
		slot := c.free[k]
		c.free = c.free[:k]
		return slot
	}
}

// Remove drops the value cached under key, if any.
func (c *Cache[V]) Remove(key CredentialDigest) {
	s := c.shard(&key)
	c.mu.Lock()
	n := s.m[key] // writers hold c.mu: the map cannot change under us
	if n != nil {
		c.removeLocked(key, n)
	}
	c.mu.Unlock()
}

// removeLocked drops n if it is still the node cached under key.
func (c *Cache[V]) removeLocked(key CredentialDigest, n *cacheNode[V]) {
	s := c.shard(&key)
	if s.m[key] != n { // c.mu held: only readers run alongside
		return
	}
	s.lock()
	delete(s.m, key)
	s.unlock()
	c.ring[n.slot] = nil
	c.free = append(c.free, n.slot)
	c.n.Add(-1)
	if c.onEvict != nil {
		c.onEvict(key, &n.val)
	}
}

// Purge drops everything.
func (c *Cache[V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.ring {
		if n != nil {
			c.removeLocked(n.key, n)
		}
	}
	c.ring, c.free, c.hand = nil, nil, 0
}

// Len reports how many entries are cached, stale ones included until they
// are evicted or read.
func (c *Cache[V]) Len() int { return int(c.n.Load()) }
