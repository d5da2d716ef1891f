// Package clock is the one clock of keylens's hot paths: the sidecar's
// handlers (Now) and the plugin's hooks (Mono for latencies, Coarse for
// everything else).
//
// time.Now reads two clocks, a sizeable share of a cached answer on virtual
// machines (docs/benchmarks.md). A Stamp reads only the monotonic clock and
// derives the wall time from it, re-reading the wall clock once a second so
// that a step of the system clock is followed within a second. One reading
// gives both a request's latency (Mono) and its hour bucket, cache lifetime
// or token expiry (Wall).
package clock

import (
	"sync"
	"sync/atomic"
	"time"
)

// A Stamp is an instant: Mono on the monotonic clock (nanoseconds since
// the process's first reading), Wall as Unix nanoseconds.
type Stamp struct{ Mono, Wall int64 }

var (
	epoch   = time.Now() // carries a monotonic reading
	offset  atomic.Int64 // wall − mono, as of checked
	checked atomic.Int64 // mono of the last wall clock read
)

func init() { checkWall(Mono()) }

// Mono is nanoseconds since the process's first reading, on the monotonic
// clock.
func Mono() int64 { return int64(time.Since(epoch)) }

// Now returns the current stamp.
func Now() Stamp {
	mono := Mono()
	if mono-checked.Load() >= int64(time.Second) {
		checkWall(mono)
	}
	return Stamp{Mono: mono, Wall: mono + offset.Load()}
}

// checkWall re-reads the wall clock. Concurrent callers may each read it;
// they store offsets within nanoseconds of each other.
func checkWall(mono int64) {
	t := time.Now()
	offset.Store(t.UnixNano() - int64(t.Sub(epoch)))
	checked.Store(mono)
}

// CoarseTick bounds how far Coarse lags.
const CoarseTick = 50 * time.Millisecond

var (
	coarse     atomic.Int64
	coarseOnce sync.Once
)

// Coarse returns the wall time in Unix nanoseconds to within CoarseTick,
// for callers that read it on every request of a path where even a
// monotonic clock read shows (the plugin's hooks) and need no better:
// cache lifetimes, hour buckets. A read is one atomic load; a goroutine
// started on the first call keeps it, from Now.
func Coarse() int64 {
	coarseOnce.Do(func() {
		coarse.Store(Now().Wall)
		go func() {
			for range time.Tick(CoarseTick) {
				coarse.Store(Now().Wall)
			}
		}()
	})
	return coarse.Load()
}

// Time is the stamp's wall time.
func (s Stamp) Time() time.Time { return time.Unix(0, s.Wall) }

// Elapsed is the time since the stamp.
func (s Stamp) Elapsed() time.Duration { return time.Duration(Mono() - s.Mono) }
