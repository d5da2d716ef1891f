package cache

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Tracked is a Cache of resolved credentials that can drop everything a
// change made stale: every credential of a key hash, or of a developer's
// keys. The keylens sidecar and the Tyk plugin cache identities in one of
// these, and invalidate it by the same rule (identity.Change.Stale).
//
// A value names the key hash and developer it resolved to through the
// owner function given to NewTracked; the index from those to credential digests
// follows the cache's evictions. Reads are the Cache's: one read lock of
// one shard stripe, nothing else.
type Tracked[V any] struct {
	c       *Cache[V]
	owner   func(*V) (keyHash, developerID string)
	onEvict func(CredentialDigest, *V)

	// gen counts invalidations: a fill that began before one does not
	// stay cached after it (see Add).
	gen atomic.Uint64

	// Almost every key has one cached credential and every developer a
	// few keys, so small slices beat nested maps.
	mu     sync.Mutex
	byHash map[string][]CredentialDigest // key hash → credential digests
	byDev  map[string][]string           // developer id → key hashes
}

// NewTracked returns a tracked cache of size entries that live ttl
// nanoseconds. owner names the key hash and developer of a value; onEvict,
// if not nil, is called as Cache's is (under the cache's lock; it must not
// call the cache).
func NewTracked[V any](size int, ttl int64, owner func(*V) (keyHash, developerID string), onEvict func(CredentialDigest, *V)) *Tracked[V] {
	t := &Tracked[V]{owner: owner, onEvict: onEvict, byHash: map[string][]CredentialDigest{}, byDev: map[string][]string{}}
	t.c = New(size, ttl, t.evicted)
	return t
}

// Get is Cache.Get.
func (t *Tracked[V]) Get(key CredentialDigest, now int64, hint uint64) (*V, bool) {
	return t.c.Get(key, now, hint)
}

// Remove drops the value cached under key, if any.
func (t *Tracked[V]) Remove(key CredentialDigest) { t.c.Remove(key) }

// Gen returns the invalidation count, to read before asking the source of
// a value that Add will cache.
func (t *Tracked[V]) Gen() uint64 { return t.gen.Load() }

// Add caches v under key from now (UnixNano), unless an invalidation came
// since gen (from Gen, read before the value was fetched): the value may
// predate the change. It reports whether v stays cached.
func (t *Tracked[V]) Add(key CredentialDigest, v V, now int64, gen uint64) bool {
	if t.gen.Load() != gen {
		return false
	}
	hash, dev := t.owner(&v)
	t.mu.Lock()
	if !slices.Contains(t.byHash[hash], key) {
		t.byHash[hash] = append(t.byHash[hash], key)
	}
	if !slices.Contains(t.byDev[dev], hash) {
		t.byDev[dev] = append(t.byDev[dev], hash)
	}
	t.mu.Unlock()
	t.c.Add(key, v, now)
	// An invalidation that counted before this load may have read the
	// index before it held key: undo. One that counts after it reads
	// the index after key was in it, and drops it itself.
	if t.gen.Load() != gen {
		t.c.Remove(key)
		return false
	}
	return true
}

// evicted keeps the indexes in step with the cache.
func (t *Tracked[V]) evicted(key CredentialDigest, v *V) {
	if t.onEvict != nil {
		t.onEvict(key, v)
	}
	hash, dev := t.owner(v)
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := slices.DeleteFunc(t.byHash[hash], func(k CredentialDigest) bool { return k == key })
	if len(keys) > 0 {
		t.byHash[hash] = keys
		return
	}
	delete(t.byHash, hash)
	if hs := slices.DeleteFunc(t.byDev[dev], func(h string) bool { return h == hash }); len(hs) > 0 {
		t.byDev[dev] = hs
	} else {
		delete(t.byDev, dev)
	}
}

// InvalidateKey drops every cached credential of a key hash.
func (t *Tracked[V]) InvalidateKey(hash string) {
	t.gen.Add(1)
	t.mu.Lock()
	keys := slices.Clone(t.byHash[hash])
	t.mu.Unlock()
	for _, k := range keys {
		t.c.Remove(k) // evicted() updates the indexes
	}
}

// InvalidateDeveloper drops every cached credential of a developer.
func (t *Tracked[V]) InvalidateDeveloper(id string) {
	t.gen.Add(1)
	t.mu.Lock()
	hashes := slices.Clone(t.byDev[id])
	t.mu.Unlock()
	for _, h := range hashes {
		t.InvalidateKey(h)
	}
}

// Invalidated counts an invalidation made elsewhere (another cache the
// same fills feed), so that fills begun before it are not cached.
func (t *Tracked[V]) Invalidated() { t.gen.Add(1) }

// Purge drops everything.
func (t *Tracked[V]) Purge() {
	t.gen.Add(1)
	t.c.Purge()
}

// Len reports how many credentials are cached.
func (t *Tracked[V]) Len() int { return t.c.Len() }
