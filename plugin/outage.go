package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// outageLogEvery is the most often an outage is logged while it lasts.
const outageLogEvery = 10 * time.Second

// outage logs a dependency's failures by their state, not one line per
// failed request: the first failure (up to down), then while it stays down
// at most one line every outageLogEvery with the number of failures not
// logged, and the recovery (down to up). Errors never carry a raw key.
type outage struct {
	what, doing string // "the keylens sidecar at …", "asking"
	isDown      atomic.Bool

	mu         sync.Mutex
	since      time.Time // down since
	logged     time.Time // last line
	failures   int64     // since down
	suppressed int64     // since the last line
	now        func() time.Time
	logf       func(format string, args ...any)
}

func newOutage(what, doing string) *outage {
	return &outage{what: what, doing: doing, now: time.Now, logf: logger.Printf}
}

// failed records a failure, logging it when the state changes or the last
// line is outageLogEvery old.
func (o *outage) failed(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.failures++
	switch {
	case !o.isDown.Load():
		o.isDown.Store(true)
		o.since, o.logged, o.suppressed = now, now, 0
		o.logf("%s failed, down: %v", capital(o.doing)+" "+o.what, err)
	case now.Sub(o.logged) >= outageLogEvery:
		o.logf("%s still down for %v: %d failures not logged since the last line; the last: %v",
			o.what, now.Sub(o.since).Round(time.Second), o.suppressed+1, err)
		o.logged, o.suppressed = now, 0
	default:
		o.suppressed++
	}
}

// ok records a success, logging the recovery after an outage. Cheap when
// nothing was down.
func (o *outage) ok() {
	if !o.isDown.Load() {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.isDown.Load() {
		return
	}
	o.isDown.Store(false)
	o.logf("%s is back after %v down and %d failures", o.what, o.now().Sub(o.since).Round(time.Millisecond), o.failures)
	o.failures, o.suppressed = 0, 0
}

// down reports whether the last call failed.
func (o *outage) down() bool { return o.isDown.Load() }

func capital(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
