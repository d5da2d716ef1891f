package main

import (
	"context"
	"time"

	"github.com/keylens/keylens/identity"
)

// feedWait is how long one long poll of the sidecar's GET /changes waits
// for a change.
const feedWait = 25 * time.Second

// followFeed applies the sidecar's change feed to the caches for the life
// of the gateway (a Go plugin is never unloaded): every change drops
// exactly what it makes stale, by the rule the sidecar follows
// (identity.Change.Stale). The sidecar serves a change only once its own
// cache has applied it, so the lookup that follows an invalidation gets
// the new answer.
//
// Where the feed starts, and after a reset (changes this follower never
// saw are gone), everything cached is dropped: its age is unknown. While
// the feed is lost, cached entries stay until cache_ttl; when it is back,
// the changes missed in between are applied from where it stopped.
func (r *resolver) followFeed() {
	after := int64(-1)
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), feedWait+r.s.Timeout)
		ch, err := r.client.Changes(ctx, after, feedWait, r.s.HitsSecret)
		cancel()
		if err != nil {
			r.feed.failed(err)
			time.Sleep(backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		r.feed.ok()
		if after < 0 || ch.Reset {
			r.purge()
		}
		for _, c := range ch.Changes {
			r.apply(c)
		}
		after = ch.Last
		r.followed.Store(true)
	}
}

// apply drops what c makes stale (cache.Resolutions.Invalidate says how).
func (r *resolver) apply(c identity.Change) { r.cache.Invalidate(c.Stale()) }

// purge drops everything cached.
func (r *resolver) purge() { r.cache.Purge() }
