package sidecar

import (
	"sync/atomic"
	"time"
)

// A stamp is when a request started: a monotonic reading, for its latency,
// and the wall time (UnixNano), for cache lifetimes and token expiry.
//
// time.Now reads two clocks, a sizeable share of a cached /auth answer on
// virtual machines (docs/benchmarks.md); a stamp reads only the monotonic
// clock and derives the wall time from it, re-reading the wall clock once
// a second so that a step of the system clock is followed within a
// second.
type stamp struct{ mono, wall int64 }

var (
	clockEpoch   = time.Now() // carries a monotonic reading
	clockOffset  atomic.Int64 // wall − mono, as of clockChecked
	clockChecked atomic.Int64 // mono of the last wall clock read
)

// monoNow is nanoseconds since clockEpoch on the monotonic clock.
func monoNow() int64 { return int64(time.Since(clockEpoch)) }

// now returns the current stamp.
func now() stamp {
	mono := monoNow()
	if mono-clockChecked.Load() >= int64(time.Second) {
		checkWallClock(mono)
	}
	return stamp{mono: mono, wall: mono + clockOffset.Load()}
}

// checkWallClock re-reads the wall clock. Concurrent callers may each read
// it; they store offsets within nanoseconds of each other.
func checkWallClock(mono int64) {
	t := time.Now()
	clockOffset.Store(t.UnixNano() - int64(t.Sub(clockEpoch)))
	clockChecked.Store(mono)
}

func init() { checkWallClock(monoNow()) }

// Time is the stamp's wall time.
func (s stamp) Time() time.Time { return time.Unix(0, s.wall) }

// elapsed is the time since the stamp.
func (s stamp) elapsed() time.Duration { return time.Duration(monoNow() - s.mono) }
