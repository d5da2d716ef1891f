// Package guard limits guessing: after Max failures of one subject (an
// account, a client address) within Window, the subject is refused until
// the window that began with its first failure has passed. SignIn is the
// one sign-in flow over a pair of them (per account, per client), with the
// keys sign-ins count under: the REST API's verify_credentials, the
// console's and the portal's sign-ins all go through it.
package guard

import (
	"sync"
	"time"
)

// Limiter counts failures per subject. Safe for concurrent use; its memory
// is bounded by MaxSubjects.
type Limiter struct {
	max         int
	window      time.Duration
	maxSubjects int
	now         func() time.Time

	mu sync.Mutex
	m  map[string]*record
}

type record struct {
	failures int
	since    time.Time // the first failure of the current window
}

// DefaultMaxSubjects bounds the subjects a Limiter remembers.
const DefaultMaxSubjects = 100000

// New returns a limiter that refuses a subject after max failures within
// window (max <= 0: never).
func New(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, maxSubjects: DefaultMaxSubjects, now: time.Now, m: map[string]*record{}}
}

// Blocked reports whether subject is refused now, and for how long still.
func (l *Limiter) Blocked(subject string) (time.Duration, bool) {
	if l == nil || l.max <= 0 {
		return 0, false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.m[subject]
	if r == nil {
		return 0, false
	}
	left := r.since.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.m, subject)
		return 0, false
	}
	if r.failures < l.max {
		return 0, false
	}
	return left, true
}

// Fail counts a failure of subject.
func (l *Limiter) Fail(subject string) {
	if l == nil || l.max <= 0 {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.m[subject]
	if r != nil && now.Sub(r.since) >= l.window {
		r = nil // that window has passed
	}
	if r == nil {
		if len(l.m) >= l.maxSubjects {
			l.prune(now)
		}
		if len(l.m) >= l.maxSubjects {
			return // full of live records: this failure goes uncounted
		}
		r = &record{since: now}
		l.m[subject] = r
	}
	r.failures++
}

// Succeed forgets subject's failures (an account that signed in).
func (l *Limiter) Succeed(subject string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.m, subject)
	l.mu.Unlock()
}

// prune drops records whose window has passed.
func (l *Limiter) prune(now time.Time) {
	for k, r := range l.m {
		if now.Sub(r.since) >= l.window {
			delete(l.m, k)
		}
	}
}
