// Package guard limits guessing. SignIn is the one sign-in flow, with the
// keys sign-ins count under: the REST API's verify_credentials, the
// console's and the portal's sign-ins all go through it. It reserves a
// failure before a password is compared and gives it back when the
// password was right, so that simultaneous guesses compare at most as
// many passwords as the limits allow.
//
// What is counted, within a window that begins with a subject's first
// failure:
//   - failures of one account from one client: that client is refused
//     for that account once they reach Policy.PairMax;
//   - failures from one client, whatever the account: that client is
//     refused everywhere once they reach Policy.ClientMax;
//   - failures of one account, whoever made them: once they reach
//     Policy.AccountDelayAfter, a client that has itself failed on the
//     account waits between attempts, twice as long after each further
//     failure (up to Policy.MaxDelay), and is refused once they reach
//     Policy.AccountMax. A client with no failures of its own on the
//     account is never refused because of others' failures.
//
// The admin key's console sign-in has no account count: the admin key is
// a high-entropy secret, not a password, so guessing it gets nowhere, and
// nobody can lock it for others.
package guard

import (
	"container/list"
	"time"
)

// table is the failure records of subjects, at most max of them: when a
// new subject would exceed it, the least recently counted one is
// forgotten. Not safe for concurrent use (SignIn and Limiter lock it).
type table struct {
	max int
	m   map[string]*list.Element // of *record
	lru list.List                // front: the most recently counted
}

// record is a subject's failures in its current window; reserved ones
// (a comparison under way) included.
type record struct {
	subject  string
	failures int
	since    time.Time // the first failure of the window
	last     time.Time // the latest failure
}

func newTable(max int) *table {
	if max <= 0 {
		max = DefaultMaxSubjects
	}
	return &table{max: max, m: map[string]*list.Element{}}
}

// DefaultMaxSubjects bounds the subjects a table remembers.
const DefaultMaxSubjects = 100000

// peek returns subject's record in its window at now, nil when it has
// none. A record whose window has passed is dropped.
func (t *table) peek(subject string, now time.Time, window time.Duration) *record {
	e := t.m[subject]
	if e == nil {
		return nil
	}
	r := e.Value.(*record)
	if now.Sub(r.since) >= window {
		t.drop(subject)
		return nil
	}
	return r
}

// count counts a failure of subject at now, starting a window when it has
// none, and makes it the most recently counted.
func (t *table) count(subject string, now time.Time, window time.Duration) *record {
	r := t.peek(subject, now, window)
	if r == nil {
		for len(t.m) >= t.max {
			t.drop(t.lru.Back().Value.(*record).subject)
		}
		r = &record{subject: subject, since: now}
		t.m[subject] = t.lru.PushFront(r)
	} else {
		t.lru.MoveToFront(t.m[subject])
	}
	r.failures++
	r.last = now
	return r
}

// touch makes r, when not nil, the most recently used.
func (t *table) touch(r *record) {
	if r != nil {
		t.lru.MoveToFront(t.m[r.subject])
	}
}

// uncount gives back a failure counted (reserved) by count, if subject's
// record is still there.
func (t *table) uncount(subject string) {
	if e := t.m[subject]; e != nil {
		if r := e.Value.(*record); r.failures > 0 {
			r.failures--
		}
	}
}

// drop forgets subject.
func (t *table) drop(subject string) {
	if e := t.m[subject]; e != nil {
		t.lru.Remove(e)
		delete(t.m, subject)
	}
}

// failures is r's count; 0 for no record.
func (r *record) count() int {
	if r == nil {
		return 0
	}
	return r.failures
}

// left is how long r's window lasts still at now.
func (r *record) left(now time.Time, window time.Duration) time.Duration {
	return r.since.Add(window).Sub(now)
}
