// Package backoff is the wait between the tries of a retry loop: it starts
// at a minimum and doubles with every failure in a row, up to a maximum.
// It is in the identity module (standard library only) so that keylens,
// its sidecar and the Tyk plugin share it.
package backoff

import (
	"context"
	"time"
)

// Backoff hands out the waits of one retry loop: Min first, then twice
// the wait before, never more than Max (Max <= 0: no cap). Its zero state
// is Reset; it is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration

	cur time.Duration // the wait last handed out; 0 when reset
}

// Next returns the wait before the next try: Min after Reset, else twice
// the wait before; capped at Max.
func (b *Backoff) Next() time.Duration {
	switch {
	case b.cur <= 0:
		b.cur = b.Min
	case b.cur > maxDuration/2:
		b.cur = maxDuration
	default:
		b.cur *= 2
	}
	return b.capped()
}

// Raise makes the current wait at least d (capped at Max), as a server's
// Retry-After asks, and returns it; the next wait doubles from it.
func (b *Backoff) Raise(d time.Duration) time.Duration {
	b.cur = max(b.cur, d)
	return b.capped()
}

// Reset starts over: the next wait is Min again. Call it after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps the next wait (Next), or until ctx ends, when it returns
// ctx.Err().
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }

// Sleep sleeps d, or until ctx ends, when it returns ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b *Backoff) capped() time.Duration {
	if b.Max > 0 && b.cur > b.Max {
		b.cur = b.Max
	}
	return b.cur
}

const maxDuration = time.Duration(1<<63 - 1)
