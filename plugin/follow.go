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
	poll := func(ctx context.Context, after int64) (*identity.Changes, error) {
		ctx, cancel := context.WithTimeout(ctx, feedWait+r.s.Timeout)
		defer cancel()
		return r.client.Changes(ctx, after, feedWait, r.s.HitsAndChangesSecret)
	}
	identity.Follow(context.Background(), poll, r.apply, identity.FollowOptions{
		Reset: func(bool) { r.purge() },
		Answered: func(*identity.Changes, bool, time.Time) {
			r.feed.ok()
			r.followed.Store(true)
		},
		Failed: func(err error, _ time.Duration) { r.feed.failed(err) },
	})
}

// apply drops what c makes stale (cache.Resolutions.Invalidate says how).
func (r *resolver) apply(c identity.Change) { r.cache.Invalidate(c.Stale()) }

// purge drops everything cached.
func (r *resolver) purge() { r.cache.Purge() }
