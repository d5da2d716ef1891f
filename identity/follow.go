package identity

import (
	"context"
	"time"

	"github.com/keylens/keylens/identity/backoff"
)

// FollowOptions configure Follow; Reset is required.
type FollowOptions struct {
	// Reset drops everything the follower cached: when it starts (start
	// set: nothing cached is known to be as new as the feed's position)
	// and when an answer says changes it never read are gone.
	Reset func(start bool)
	// Answered, if not nil, is called after each answer is applied
	// (start set for the first), with the time it came.
	Answered func(ch *Changes, start bool, at time.Time)
	// Failed, if not nil, is called when asking failed, before waiting
	// retryIn to ask again; not when ctx ended.
	Failed func(err error, retryIn time.Duration)
	// The wait after a failure starts at MinBackoff (default 100 ms) and
	// doubles with every failure in a row, up to MaxBackoff (default 5 s).
	MinBackoff, MaxBackoff time.Duration
}

// Follow follows a change feed until ctx ends, calling apply with every
// change in order: the one loop of every keylens cache that the feed keeps
// honest (the sidecar's, the Tyk plugin's). poll answers the changes after
// after, waiting a while for one (Client.Changes does); after < 0 asks
// where to start, and the first answer (its Last) is the start. A failure
// is retried with backoff, from where the feed was left.
func Follow(ctx context.Context, poll func(ctx context.Context, after int64) (*Changes, error), apply func(Change), o FollowOptions) {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	after := int64(-1)
	b := backoff.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff}
	for ctx.Err() == nil {
		ch, err := poll(ctx, after)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := b.Next()
			if o.Failed != nil {
				o.Failed(err, wait)
			}
			_ = backoff.Sleep(ctx, wait)
			continue
		}
		at := time.Now()
		b.Reset()
		start := after < 0
		if start || ch.Reset {
			o.Reset(start)
		}
		for _, c := range ch.Changes {
			apply(c)
		}
		after = ch.Last
		if o.Answered != nil {
			o.Answered(ch, start, at)
		}
	}
}
