package sidecar

import (
	"context"
	"time"

	"github.com/keylens/keylens"
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
// answers stay until their TTL.
func (r *Resolver) Follow(ctx context.Context, feed Feed) {
	var after int64
	backoff := 100 * time.Millisecond
	started := false
	for ctx.Err() == nil {
		if !started {
			last, err := feed.LastChange(ctx)
			if err != nil {
				r.feedFailed(ctx, err, &backoff)
				continue
			}
			// Nothing was cached before now: start from the newest.
			after, started = last, true
			r.Purge()
			r.lastContact.Store(time.Now().UnixNano())
			r.advance(after)
		}
		changes, gap, err := feed.WaitForChanges(ctx, after, 1000, 25*time.Second)
		if err != nil {
			r.feedFailed(ctx, err, &backoff)
			continue
		}
		backoff = 100 * time.Millisecond
		now := time.Now()
		r.m.feedLastContact.Set(float64(now.Unix()))
		r.lastContact.Store(now.UnixNano())
		if gap {
			r.opts.Logger.Warn("change feed gap: dropping the whole cache")
			r.Purge()
		}
		for _, c := range changes {
			r.Apply(c)
			after = c.Seq
		}
		r.advance(after)
		if n := len(changes); n > 0 {
			r.m.feedLastSeq.Set(float64(after))
			r.m.feedLag.Set(now.Sub(changes[n-1].Time).Seconds())
		}
	}
}

func (r *Resolver) feedFailed(ctx context.Context, err error, backoff *time.Duration) {
	if ctx.Err() != nil {
		return
	}
	r.m.feedErrors.Inc()
	r.opts.Logger.Warn("change feed unavailable; cached answers stay until their TTL", "err", err, "retry_in", *backoff)
	select {
	case <-ctx.Done():
	case <-time.After(*backoff):
	}
	*backoff = min(*backoff*2, 5*time.Second)
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
