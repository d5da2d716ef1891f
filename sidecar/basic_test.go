package sidecar_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sidecar"
)

func basicCred(user, pw string) []byte {
	return []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw)))
}

// TestBasicUsernameRefusedAfterItsFailures: once a username's passwords
// have failed BasicMaxFailures times, it is refused (429's GuessingError,
// with the wait) without a password check, the right password included,
// until its window ends; other usernames, and a credential of it already
// verified, are served as before.
func TestBasicUsernameRefusedAfterItsFailures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	attacked := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	other := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	r := sidecar.NewResolver(f.db, sidecar.ResolverOptions{BasicMaxFailures: 3, BasicFailureWindow: time.Hour})
	var checks atomic.Int64
	sidecar.SetPasswordCheck(r, func(hash, pw string) bool { checks.Add(1); return keylens.CheckPassword(hash, pw) })
	verified := basicCred(attacked.RawKey, attacked.Password)
	if _, err := r.Resolve(ctx, verified); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := r.Resolve(ctx, basicCred(attacked.RawKey, fmt.Sprint("guess-", i))); !errors.Is(err, sidecar.ErrUnknown) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	checks.Store(0)
	var g *sidecar.GuessingError
	if _, err := r.Resolve(ctx, basicCred(attacked.RawKey, "guess-4")); !errors.As(err, &g) || g.RetrySeconds() <= 0 || g.RetrySeconds() > 3600 {
		t.Errorf("a 4th guess: %v, want a GuessingError until the hour's window ends", err)
	}
	// The right password, not yet verified in this form: refused too.
	if _, err := r.Resolve(ctx, basicCred(attacked.RawKey, attacked.Password+" ")); !errors.As(err, &g) {
		t.Errorf("another password after the limit: %v, want a GuessingError", err)
	}
	if n := checks.Load(); n != 0 {
		t.Errorf("%d passwords checked for a refused username, want 0", n)
	}
	if e, err := r.Resolve(ctx, verified); err != nil || e.DeveloperID != f.dev.ID {
		t.Errorf("the credential verified before the guessing: %v %v", e, err)
	}
	// Its cached identity dropped (any change of the developer, or its
	// TTL): the owner is still served while the guesser goes on.
	r.Apply(keylens.Change{Kind: keylens.ChangeDeveloper, DeveloperID: f.dev.ID})
	if _, err := r.Resolve(ctx, basicCred(attacked.RawKey, "guess-5")); !errors.As(err, &g) {
		t.Errorf("a guess after the change: %v, want a GuessingError", err)
	}
	if e, err := r.Resolve(ctx, verified); err != nil || e.DeveloperID != f.dev.ID {
		t.Errorf("the credential verified before the guessing, no longer cached: %v %v, want it served", e, err)
	}
	if e, err := r.Resolve(ctx, basicCred(other.RawKey, other.Password)); err != nil || e.DeveloperID != f.dev.ID {
		t.Errorf("another username: %v %v", e, err)
	}
}

// TestSimultaneousBasicGuessesCheckAtMostTheLimit: 50 distinct wrong
// passwords for one username at once check at most BasicMaxFailures of
// them: each reserves its failure before its check. The checks are held
// until every guess has either entered its check or been refused.
func TestSimultaneousBasicGuessesCheckAtMostTheLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	r := sidecar.NewResolver(f.db, sidecar.ResolverOptions{BasicMaxFailures: 3, BcryptConcurrency: 64})
	const n = 50
	var decided sync.WaitGroup
	decided.Add(n)
	release := make(chan struct{})
	var checked, refused atomic.Int64
	sidecar.SetPasswordCheck(r, func(hash, pw string) bool {
		checked.Add(1)
		decided.Done()
		<-release
		return false
	})
	var done sync.WaitGroup
	for i := range n {
		done.Go(func() {
			var g *sidecar.GuessingError
			if _, err := r.Resolve(ctx, basicCred(a.RawKey, fmt.Sprint("guess-", i))); errors.As(err, &g) {
				refused.Add(1)
				decided.Done()
			}
		})
	}
	decided.Wait()
	close(release)
	done.Wait()
	if checked.Load() != 3 || refused.Load() != n-3 {
		t.Errorf("%d checked, %d refused; want 3 checked, the rest refused", checked.Load(), refused.Load())
	}
}

// TestBcryptSlotsServeCleanChecksFirst: with the one slot taken and
// guesses (unknown usernames, a failing one) waiting for it, the first
// check of a known username without failures goes next; with the wait
// list full, a guess is ErrBusy at once, and a clean check takes the
// place of the latest waiting guess.
func TestBcryptSlotsServeCleanChecksFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fresh := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	attacked := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	r := sidecar.NewResolver(f.db, sidecar.ResolverOptions{BcryptConcurrency: 1})
	sidecar.SetBcryptWaiting(r, 3, time.Minute)
	var mu sync.Mutex
	var order []string
	entered, release := make(chan struct{}), make(chan struct{})
	sidecar.SetPasswordCheck(r, func(hash, pw string) bool {
		mu.Lock()
		order = append(order, pw)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		return keylens.CheckPassword(hash, pw)
	})
	results := make(chan error, 10)
	resolve := func(cred []byte) { _, err := r.Resolve(ctx, cred); results <- err }
	go resolve(basicCred(attacked.RawKey, "holder")) // takes the slot
	<-entered
	for i, cred := range [][]byte{basicCred("unknown-1", "u1"), basicCred("unknown-2", "u2"), basicCred(attacked.RawKey, "a1")} {
		go resolve(cred)
		for sidecar.BcryptWaiting(r) != i+1 {
			time.Sleep(time.Millisecond)
		}
	}
	// Full: another guess is refused at once.
	if _, err := r.Resolve(ctx, basicCred("unknown-3", "u3")); !errors.Is(err, sidecar.ErrBusy) {
		t.Errorf("a guess with the wait list full: %v, want ErrBusy", err)
	}
	// A clean check displaces the latest guess ("a1": ErrBusy).
	go resolve(basicCred(fresh.RawKey, fresh.Password))
	if err := <-results; !errors.Is(err, sidecar.ErrBusy) {
		t.Errorf("the displaced guess: %v, want ErrBusy", err)
	}
	for range 3 { // the holder, then whoever comes next, in turn
		release <- struct{}{}
		<-entered
	}
	close(release)
	for range 3 {
		<-results
	}
	if want := []string{"holder", fresh.Password, "u1", "u2"}; !slices.Equal(order, want) {
		t.Errorf("checks ran in the order %q, want %q", order, want)
	}
}

// TestMadeUpUsernamesDoNotResetAGuessersCount: a flood of usernames no
// key has (more than the failure records a resolver keeps) leaves a
// guessed-at username refused: records of unknown usernames are not kept.
func TestMadeUpUsernamesDoNotResetAGuessersCount(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	attacked := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-basic"})
	r := sidecar.NewResolver(f.db, sidecar.ResolverOptions{BasicMaxFailures: 3, BasicFailureWindow: time.Hour, Size: 4000})
	sidecar.SetPasswordCheck(r, func(hash, pw string) bool { return hash != "" && keylens.CheckPassword(hash, pw) })
	for i := range 3 {
		if _, err := r.Resolve(ctx, basicCred(attacked.RawKey, fmt.Sprint("guess-", i))); !errors.Is(err, sidecar.ErrUnknown) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	for i := range 2500 { // the records kept: max(Size/4, 1000)
		if _, err := r.Resolve(ctx, basicCred(fmt.Sprint("made-up-", i), "x")); !errors.Is(err, sidecar.ErrUnknown) {
			t.Fatalf("made-up username %d: %v", i, err)
		}
	}
	var g *sidecar.GuessingError
	if _, err := r.Resolve(ctx, basicCred(attacked.RawKey, "guess-3")); !errors.As(err, &g) {
		t.Errorf("a guess after 2,500 made-up usernames: %v, want a GuessingError", err)
	}
}
