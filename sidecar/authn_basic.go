package sidecar

import (
	"bytes"
	"container/list"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/cache"
)

// basicAuthenticator takes "Basic <base64 user:password>" of a basic key:
// the username finds the key, the password is checked against its bcrypt
// hash. Guessing is kept cheap for everyone else: a username whose
// passwords have failed too often lately is refused before anything is
// looked up (basicFailures), and the bcrypt comparisons share
// BcryptConcurrency slots fairly (bcryptSlots).
type basicAuthenticator struct{ r *Resolver }

func (a basicAuthenticator) authenticate(ctx context.Context, cred []byte) (*keylens.Credential, int64, error) {
	if !hasPrefixFold(cred, "basic ") {
		return nil, 0, errNotMine
	}
	return a.r.lookupBasic(ctx, bytes.TrimSpace(cred[6:]))
}

func (r *Resolver) lookupBasic(ctx context.Context, encoded []byte) (*keylens.Credential, int64, error) {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(encoded)))
	n, err := base64.StdEncoding.Decode(raw, encoded)
	if err != nil {
		return nil, 0, ErrUnknown
	}
	user, pass, ok := bytes.Cut(raw[:n], []byte{':'})
	if !ok || len(user) == 0 {
		return nil, 0, ErrUnknown
	}
	// Reserve the failure before anything else: simultaneous guesses at
	// one username check no more passwords than its limit. A credential
	// this sidecar verified lately is not refused for others' failures:
	// a guesser cannot lock the owner out by guessing on.
	userKey, credKey := cache.DigestOf(user), cache.DigestOf(encoded)
	now := time.Now().UnixNano()
	prior, wait := r.basicFailures.reserve(userKey, now)
	if wait > 0 {
		if !r.basicFailures.verifiedLately(credKey, now) {
			return nil, 0, &GuessingError{RetryAfter: wait}
		}
		c, _, err := r.checkBasic(ctx, string(user), string(pass), true)
		return c, 0, err
	}
	c, known, err := r.checkBasic(ctx, string(user), string(pass), prior == 0)
	switch {
	case err == nil:
		r.basicFailures.giveBack(userKey)
		r.basicFailures.verified(credKey, now)
	case !errors.Is(err, ErrUnknown):
		r.basicFailures.giveBack(userKey) // undecided
	case !known:
		// No such username: no account to protect, and a record kept for
		// it would push out those of real usernames (a flood of made-up
		// names would reset a guesser's count).
		r.basicFailures.forget(userKey)
	}
	return c, 0, err
}

// checkBasic finds user's key and compares pass with its hash, in a
// bcrypt slot. clean says the username has no failures lately: its
// first check, if the key exists, goes before those of usernames under
// attack and unknown ones. known reports that the username names a Basic
// key.
func (r *Resolver) checkBasic(ctx context.Context, user, pass string, clean bool) (_ *keylens.Credential, known bool, _ error) {
	start := time.Now()
	c, err := r.store.ResolveBasicUser(ctx, user)
	r.m.observeStore("basic", start, err)
	hash := ""
	switch {
	case err == nil && c.Key.AuthType == keylens.AuthBasic:
		hash = c.Key.BasicPasswordHash
	case err == nil, keylens.ErrorCode(err) == keylens.ENOTFOUND:
		// Unknown: the same cost as a real check (an empty hash).
	default:
		return nil, false, err
	}
	// Only the comparison takes a slot: a slow store lookup (a portal's
	// round trip) must not fill them while the CPUs idle.
	if !r.bcryptSlots.acquire(ctx, clean && hash != "") {
		return nil, hash != "", ErrBusy
	}
	ok := r.checkPassword(hash, pass)
	r.bcryptSlots.release()
	if !ok || hash == "" {
		return nil, hash != "", ErrUnknown
	}
	return c, true, nil
}

// GuessingError: the Basic username's passwords have failed too often
// lately; no password was checked. Answered 429 with Retry-After.
type GuessingError struct{ RetryAfter time.Duration }

func (e *GuessingError) Error() string {
	return fmt.Sprintf("too many failed passwords for this username: retry in %d seconds", e.RetrySeconds())
}

// RetrySeconds is RetryAfter in whole seconds, rounded up.
func (e *GuessingError) RetrySeconds() int { return int(math.Ceil(e.RetryAfter.Seconds())) }

// basicFailures counts each Basic username's failed passwords (reserved
// ones, whose comparison is under way, included) within a window that
// begins with its first, in a keyed cache of identity/cache: bounded, the
// least recently used usernames evicted first, so that a flood of
// usernames costs fixed memory. Keyed by the username's digest, never the
// username.
type basicFailures struct {
	max    int
	window int64 // nanoseconds

	mu sync.Mutex
	c  *cache.Cache[*userFailures]

	// ok holds the digests of whole credentials (username and password)
	// found right within verifiedFor: their owners pass a username's
	// refusal. Only the right password gets in, so guessing cannot.
	ok *cache.Cache[struct{}]
}

// verifiedFor is how long a credential found right passes its username's
// refusal: longer than an identity stays cached, so that an owner whose
// entry is dropped (a change, its TTL) is not then refused.
const verifiedFor = 24 * time.Hour

// userFailures is a username's count in its window. Guarded by
// basicFailures.mu.
type userFailures struct {
	n     int
	until int64 // UnixNano: the window's end
}

func newBasicFailures(max int, window time.Duration, size int) *basicFailures {
	return &basicFailures{max: max, window: int64(window), c: cache.New[*userFailures](size, int64(window), nil),
		ok: cache.New[struct{}](size, int64(verifiedFor), nil)}
}

// reserve counts a failure of the username whose digest is key, at now
// (UnixNano), and returns the failures it had before (prior). When it has
// max already, it counts nothing and returns how long until its window
// ends (wait).
func (b *basicFailures) reserve(key cache.CredentialDigest, now int64) (prior int, wait time.Duration) {
	if b.max <= 0 {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.c.Get(key, now, 0); ok {
		u := *p
		if u.n >= b.max {
			return u.n, time.Duration(u.until - now)
		}
		u.n++
		return u.n - 1, 0
	}
	b.c.Add(key, &userFailures{n: 1, until: now + b.window}, now)
	return 0, 0
}

// forget drops the record of the username whose digest is key.
func (b *basicFailures) forget(key cache.CredentialDigest) {
	if b.max <= 0 {
		return
	}
	b.mu.Lock()
	b.c.Remove(key)
	b.mu.Unlock()
}

// verified remembers that the whole credential whose digest is key was
// right at now, for verifiedFor.
func (b *basicFailures) verified(key cache.CredentialDigest, now int64) {
	if b.max > 0 {
		b.ok.Add(key, struct{}{}, now)
	}
}

// verifiedLately reports whether the whole credential whose digest is key
// was right within verifiedFor.
func (b *basicFailures) verifiedLately(key cache.CredentialDigest, now int64) bool {
	_, ok := b.ok.Get(key, now, 0)
	return ok
}

// giveBack undoes a reserve whose password was right, or undecided.
func (b *basicFailures) giveBack(key cache.CredentialDigest) {
	if b.max <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.c.Get(key, time.Now().UnixNano(), 0); ok && (*p).n > 0 {
		(*p).n--
	}
}

// bcryptSlots bounds the bcrypt comparisons run at once, and shares them
// fairly: a check that finds every slot taken waits its turn (at most
// maxWait, and only while fewer than maxWaiting wait; otherwise ErrBusy),
// and the first checks of known usernames without recent failures are
// served before the rest. A guesser, whose usernames are unknown or
// failing, can make the others wait only for the comparisons already
// running, and holds at most maxWaiting goroutines waiting.
type bcryptSlots struct {
	maxWaiting int
	maxWait    time.Duration

	mu      sync.Mutex
	free    int
	waiting [2]list.List // of chan bool; [0]: clean checks, served first
}

func newBcryptSlots(n int) *bcryptSlots {
	return &bcryptSlots{free: n, maxWaiting: max(16, 8*n), maxWait: 2 * time.Second}
}

// acquire takes a slot, waiting for one when none is free; false when it
// could not (release is then not to be called).
func (s *bcryptSlots) acquire(ctx context.Context, clean bool) bool {
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.mu.Unlock()
		return true
	}
	class := 1
	if clean {
		class = 0
	}
	if s.waiting[0].Len()+s.waiting[1].Len() >= s.maxWaiting {
		// Full: a clean check takes the place of the latest other one.
		last := s.waiting[1].Back()
		if class == 1 || last == nil {
			s.mu.Unlock()
			return false
		}
		s.waiting[1].Remove(last)
		last.Value.(chan bool) <- false
	}
	ready := make(chan bool, 1)
	e := s.waiting[class].PushBack(ready)
	s.mu.Unlock()

	timer := time.NewTimer(s.maxWait)
	defer timer.Stop()
	select {
	case ok := <-ready:
		return ok
	case <-timer.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case ok := <-ready: // handed a slot (or displaced) meanwhile
		if ok {
			s.releaseLocked()
		}
	default: // still waiting: only a sender removes it
		s.waiting[class].Remove(e)
	}
	return false
}

// release gives a slot back: to the next waiter, clean ones first.
func (s *bcryptSlots) release() {
	s.mu.Lock()
	s.releaseLocked()
	s.mu.Unlock()
}

func (s *bcryptSlots) releaseLocked() {
	for i := range s.waiting {
		if e := s.waiting[i].Front(); e != nil {
			s.waiting[i].Remove(e)
			e.Value.(chan bool) <- true
			return
		}
	}
	s.free++
}
