package cache

import "errors"

// Resolutions caches what resolving credentials gave: the values found
// (a Tracked cache, so that a change can drop what it made stale), each
// served until the credential's own expiry at the latest, and refusals
// (unknown key, inactive developer) for a shorter time. The keylens
// sidecar, the Tyk plugin and identity.Client all cache credentials in
// one of these.
//
// Resolve is the fill: it reads Gen before asking the source and hands it
// to Add or Refuse, so that an answer fetched before an invalidation is
// not cached.
type Resolutions[V any] struct {
	found   *Tracked[V]
	refused *Cache[error]
	o       ResolutionsOptions[V]
}

// ResolutionsOptions configure NewResolutions.
type ResolutionsOptions[V any] struct {
	Size        int   // found values
	TTL         int64 // of a found value, nanoseconds
	NegativeTTL int64 // of a refusal, nanoseconds; max(Size/4, 1000) are kept
	// Owner names the key hash and developer of a value; Expires its
	// credential's own expiry in Unix seconds (0: none).
	Owner   func(*V) (keyHash, developerID string)
	Expires func(*V) int64
	// RefusesInactive says refusals include inactive developers (the
	// plugin and identity.Client cache "inactive" as a refusal; the
	// sidecar caches an inactive developer's key as a found value): then
	// a changed developer drops every refusal, as a reactivation may have
	// made one an identity.
	RefusesInactive bool
	// Refusals are the errors of Resolve's fetch that are answers, not
	// failures (unknown key; inactive developer where RefusesInactive):
	// an error that is one of them (errors.Is) is cached as that one.
	Refusals []error
	// OnEvict, if not nil, is called when a found value leaves the cache,
	// as Cache's is.
	OnEvict func(CredentialDigest, *V)
}

// NewResolutions returns an empty cache.
func NewResolutions[V any](o ResolutionsOptions[V]) *Resolutions[V] {
	return &Resolutions[V]{
		found:   NewTracked(o.Size, o.TTL, o.Owner, o.OnEvict),
		refused: New[error](max(o.Size/4, 1000), o.NegativeTTL, nil),
		o:       o,
	}
}

// Get returns what is cached under key at now (UnixNano): a found value,
// or the error a refusal was cached with; ok is false when neither is
// (then resolve: Resolve does it all). A found value whose credential has
// expired is dropped. It allocates nothing. It is Resolve without a fetch.
func (r *Resolutions[V]) Get(key CredentialDigest, now int64, hint uint64) (v *V, refused error, ok bool) {
	v, ok, refused = r.Resolve(key, now, hint, nil)
	return v, refused, ok
}

// Resolve returns what key resolves to at now (UnixNano): what Get finds,
// or else what fetch answers, which it caches as add or refuse would under
// the generation read before fetch ran, so that an invalidation during
// the fetch leaves it uncached. fetch is called only on a miss; its errors
// that are Refusals are cached as refusals, others (failures) are not. hit
// reports whether the answer came from the cache; with fetch nil, a miss
// is (nil, false, nil). A found value whose credential has expired is
// dropped. A hit allocates nothing.
func (r *Resolutions[V]) Resolve(key CredentialDigest, now int64, hint uint64, fetch func() (*V, error)) (v *V, hit bool, err error) {
	// The hit path is written out here, not a call of Get, so that it
	// costs the request path no call more than Get did.
	if v, ok := r.found.Get(key, now, hint); ok {
		if exp := r.o.Expires(v); exp == 0 || exp > now/1e9 {
			return v, true, nil
		}
		r.found.Remove(key)
	}
	if err, ok := r.refused.Get(key, now, hint); ok {
		return nil, true, *err
	}
	if fetch == nil {
		return nil, false, nil
	}
	gen := r.gen()
	if v, err = fetch(); err == nil {
		r.add(key, *v, now, gen)
		return v, false, nil
	}
	for _, refusal := range r.o.Refusals {
		if errors.Is(err, refusal) {
			r.refuse(key, refusal, now, gen)
			break
		}
	}
	return nil, false, err
}

// gen returns the invalidation count, to read before asking the source.
func (r *Resolutions[V]) gen() uint64 { return r.found.Gen() }

// add caches a found value from now, unless an invalidation came since
// gen. It reports whether v stays cached.
func (r *Resolutions[V]) add(key CredentialDigest, v V, now int64, gen uint64) bool {
	return r.found.Add(key, v, now, gen)
}

// refuse caches a refusal (err) from now, unless an invalidation came
// since gen.
func (r *Resolutions[V]) refuse(key CredentialDigest, err error, now int64, gen uint64) {
	if r.found.Gen() != gen {
		return
	}
	r.refused.Add(key, err, now)
	// An invalidation that counted before this load may have emptied the
	// refusals before err was in them: undo (as Tracked.Add does). One
	// that counts after it empties them after err was added.
	if r.found.Gen() != gen {
		r.refused.Remove(key)
	}
}

// Invalidate drops what a change made stale (identity.Change.Stale says
// what): every value of keyHash, every value of developerID's keys, and
// every refusal when one may have become an identity: a key was added,
// or, with RefusesInactive, a developer changed (say, was reactivated).
func (r *Resolutions[V]) Invalidate(keyHash, developerID string, newKey bool) {
	if keyHash != "" {
		r.found.InvalidateKey(keyHash)
	}
	if developerID != "" {
		r.found.InvalidateDeveloper(developerID)
	}
	if newKey || (developerID != "" && r.o.RefusesInactive) {
		r.found.Invalidated() // a fill under way is not cached
		r.refused.Purge()
	}
}

// Purge drops everything.
func (r *Resolutions[V]) Purge() {
	r.found.Purge()
	r.refused.Purge()
}

// Len reports how many found values are cached.
func (r *Resolutions[V]) Len() int { return r.found.Len() }
