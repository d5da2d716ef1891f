package sidecar

import (
	"context"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
)

// Feed is the change feed the resolver follows.
type Feed interface {
	WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]keylens.Change, bool, error)
	LastChange(ctx context.Context) (int64, error)
}

// Follow applies the change feed to the cache until ctx ends: every change
// that can alter how a key resolves invalidates what it touches as soon as
// it commits. On a gap (changes pruned unread) the whole cache is dropped.
// Failures are retried with backoff; while the feed is unreachable cached
// answers stay until their TTL. The loop is identity.Follow, the plugin's.
func (r *Resolver) Follow(ctx context.Context, feed Feed) {
	identity.Follow(ctx, pollFeed(feed), r.Apply, identity.FollowOptions{
		Reset: func(start bool) {
			// At the start nothing was cached before now: start from the newest.
			if !start {
				r.opts.Logger.Warn("change feed gap: dropping the whole cache")
			}
			r.Purge()
		},
		Answered: func(ch *identity.Changes, start bool, now time.Time) {
			if !start {
				r.m.feedLastContact.Set(float64(now.Unix()))
			}
			r.lastContact.Store(now.UnixNano())
			r.advance(ch.Last)
			if n := len(ch.Changes); n > 0 {
				r.m.feedLastSeq.Set(float64(ch.Last))
				r.m.feedLag.Set(now.Sub(ch.Changes[n-1].Time).Seconds())
			}
		},
		Failed: func(err error, retryIn time.Duration) {
			r.m.feedErrors.Inc()
			r.opts.Logger.Warn("change feed unavailable; cached answers stay until their TTL", "err", err, "retry_in", retryIn)
		},
	})
}

// pollFeed asks feed as identity.Follow asks: after < 0 for where to start
// (the newest change), else for up to 1000 changes after after, waiting up
// to 25 s for one.
func pollFeed(feed Feed) func(ctx context.Context, after int64) (*identity.Changes, error) {
	return func(ctx context.Context, after int64) (*identity.Changes, error) {
		if after < 0 {
			last, err := feed.LastChange(ctx)
			if err != nil {
				return nil, err
			}
			return &identity.Changes{Last: last}, nil
		}
		changes, gap, err := feed.WaitForChanges(ctx, after, 1000, 25*time.Second)
		if err != nil {
			return nil, err
		}
		ch := &identity.Changes{Changes: changes, Last: after, Reset: gap}
		if n := len(changes); n > 0 {
			ch.Last = changes[n-1].Seq
		}
		return ch, nil
	}
}

// advance records that the cache has applied the feed up to seq, and wakes
// the readers waiting in WaitApplied.
func (r *Resolver) advance(seq int64) {
	r.feedMu.Lock()
	defer r.feedMu.Unlock()
	if seq == r.applied {
		return
	}
	r.applied = seq
	close(r.advanced)
	r.advanced = make(chan struct{})
}

// Applied returns the change feed position the cache has applied: a lookup
// made now reflects every change up to it. -1 until Follow has started.
func (r *Resolver) Applied() int64 {
	r.feedMu.Lock()
	defer r.feedMu.Unlock()
	return r.applied
}

// WaitApplied waits up to wait, or until ctx ends, for the applied position
// to pass after, and returns it.
func (r *Resolver) WaitApplied(ctx context.Context, after int64, wait time.Duration) int64 {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		r.feedMu.Lock()
		applied, advanced := r.applied, r.advanced
		r.feedMu.Unlock()
		if applied > after || applied < 0 {
			return applied
		}
		select {
		case <-advanced:
		case <-timer.C:
			return applied
		case <-ctx.Done():
			return applied
		}
	}
}

// FeedHealthy reports whether the change feed answered within maxAge.
func (r *Resolver) FeedHealthy(maxAge time.Duration) bool {
	last := r.lastContact.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < maxAge
}
