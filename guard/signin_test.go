package guard

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// testPolicy: 3 failures per account and client, 5 per client, within a
// minute; an account's delays from its 4th failure (1 s doubling, at most
// 8 s), its ceiling at 10.
var testPolicy = Policy{Window: time.Minute, PairMax: 3, ClientMax: 5,
	AccountDelayAfter: 4, BaseDelay: time.Second, MaxDelay: 8 * time.Second, AccountMax: 10}

// testSignIn is a SignIn of p on a clock the test moves.
func testSignIn(p Policy, now *time.Time) *SignIn {
	s := NewSignIn(p)
	s.now = func() time.Time { return *now }
	return s
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// attempt runs one attempt whose check answers ok and err, and reports
// whether the check ran.
func attempt(t *testing.T, s *SignIn, account, client string, ok bool, err error) (Outcome, bool) {
	t.Helper()
	ran := false
	out, gotErr := s.Attempt(account, client, func() (bool, error) { ran = true; return ok, err })
	if !errors.Is(gotErr, err) {
		t.Fatalf("Attempt's error %v, want %v", gotErr, err)
	}
	return out, ran
}

// TestSimultaneousGuessesCheckAtMostTheLimit: 200 wrong guesses at once,
// from one client at one account, run the check at most PairMax times:
// each reserves its failure before its check runs. The checks are held
// until every attempt has either entered its check or been refused, so
// that all 200 are under way together.
func TestSimultaneousGuessesCheckAtMostTheLimit(t *testing.T) {
	for _, c := range []struct {
		name, account string
		clients       int
		want          int
	}{
		{"one client, one account", "account:a", 1, 3},
		{"one client, many accounts", "", 1, 5},
		{"the admin key from one client", AdminKey, 1, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := NewSignIn(testPolicy)
			const n = 200
			var checked, refused atomic.Int64
			var decided sync.WaitGroup
			decided.Add(n)
			release := make(chan struct{})
			var done sync.WaitGroup
			for i := range n {
				account := c.account
				if account == "" {
					account = fmt.Sprint("account:", i)
				}
				done.Go(func() {
					out, _ := s.Attempt(account, "client:1", func() (bool, error) {
						checked.Add(1)
						decided.Done()
						<-release
						return false, nil
					})
					if out.Verdict == Refused {
						refused.Add(1)
						decided.Done()
					}
				})
			}
			decided.Wait()
			close(release)
			done.Wait()
			if checked.Load() != int64(c.want) || refused.Load() != n-int64(c.want) {
				t.Errorf("%d checked, %d refused; want %d checked", checked.Load(), refused.Load(), c.want)
			}
		})
	}
}

func TestSignInLimitsPerAccountAndClient(t *testing.T) {
	now := t0
	s := testSignIn(testPolicy, &now)
	for i := range 3 {
		if out, ran := attempt(t, s, "account:a", "client:1", false, nil); out.Verdict != Wrong || !ran {
			t.Fatalf("wrong password %d: %+v ran %v", i, out, ran)
		}
	}
	now = now.Add(10 * time.Second)
	out, ran := attempt(t, s, "account:a", "client:1", true, nil)
	if out.Verdict != Refused || ran || out.RetryAfter != 50*time.Second || out.RetrySeconds() != 50 {
		t.Errorf("after 3 failures, the same client: %+v ran %v, want refused for 50s, the check not run", out, ran)
	}
	// Someone else's failures refuse nobody else.
	if out, ran := attempt(t, s, "account:a", "client:2", true, nil); out.Verdict != Passed || !ran {
		t.Errorf("the account from a client with no failures: %+v ran %v", out, ran)
	}
	if out, _ := attempt(t, s, "account:b", "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("another account from the client: %+v", out)
	}
	now = now.Add(50 * time.Second)
	if out, ran := attempt(t, s, "account:a", "client:1", true, nil); out.Verdict != Passed || !ran {
		t.Errorf("once the window passed: %+v ran %v", out, ran)
	}
}

func TestSignInLimitsPerClient(t *testing.T) {
	now := t0
	s := testSignIn(testPolicy, &now)
	for i := range 5 { // five accounts, one failure each
		attempt(t, s, fmt.Sprint("account:", i), "client:1", false, nil)
		now = now.Add(time.Second)
	}
	out, ran := attempt(t, s, "account:z", "client:1", true, nil)
	if out.Verdict != Refused || ran || out.RetryAfter != 55*time.Second {
		t.Errorf("after 5 failures from one client: %+v ran %v, want refused for 55s, the check not run", out, ran)
	}
	if out, _ := attempt(t, s, "account:0", "client:2", true, nil); out.Verdict != Passed {
		t.Errorf("an account it failed on, from another client: %+v", out)
	}
}

// TestAccountDelaysOnlyClientsThatFailedOnIt: many clients' failures on
// one account delay, then refuse, the clients that failed on it, with
// delays that double; a client without failures on it is checked
// throughout.
func TestAccountDelaysOnlyClientsThatFailedOnIt(t *testing.T) {
	now := t0
	s := testSignIn(testPolicy, &now)
	// client:0 fails once; clients 1-3 once each: 4 account failures.
	for i := range 4 {
		attempt(t, s, "account:a", fmt.Sprint("client:", i), false, nil)
	}
	out, ran := attempt(t, s, "account:a", "client:0", false, nil)
	if out.Verdict != Refused || ran || out.RetryAfter != time.Second {
		t.Fatalf("at the account's 4th failure, a client that failed on it: %+v ran %v, want refused for 1s", out, ran)
	}
	now = now.Add(time.Second)
	if out, ran := attempt(t, s, "account:a", "client:0", false, nil); out.Verdict != Wrong || !ran {
		t.Fatalf("once the delay passed: %+v ran %v", out, ran)
	}
	// 5 failures: 2 s after the latest.
	if out, _ := attempt(t, s, "account:a", "client:1", false, nil); out.Verdict != Refused || out.RetryAfter != 2*time.Second {
		t.Errorf("at the 5th: %+v, want 2s", out)
	}
	if out, ran := attempt(t, s, "account:a", "client:new", true, nil); out.Verdict != Passed || !ran {
		t.Errorf("a client with no failures, while the account is delayed: %+v ran %v", out, ran)
	}
	// A success ended the run: no delay left.
	if out, ran := attempt(t, s, "account:a", "client:1", false, nil); out.Verdict != Wrong || !ran {
		t.Errorf("after the account's success: %+v ran %v", out, ran)
	}
}

func TestAccountCeiling(t *testing.T) {
	now := t0
	p := testPolicy
	p.AccountDelayAfter = 0 // the ceiling alone
	s := testSignIn(p, &now)
	for i := range 10 {
		attempt(t, s, "account:a", fmt.Sprint("client:", i), false, nil)
		now = now.Add(time.Second)
	}
	out, ran := attempt(t, s, "account:a", "client:3", true, nil)
	if out.Verdict != Refused || ran || out.RetryAfter != 50*time.Second {
		t.Errorf("at the ceiling, a client that failed on it: %+v ran %v, want refused until the window passes", out, ran)
	}
	if out, ran := attempt(t, s, "account:a", "client:new", true, nil); out.Verdict != Passed || !ran {
		t.Errorf("at the ceiling, a client with no failures on it: %+v ran %v", out, ran)
	}
	for d := range 8 {
		if got, want := p.delay(d), min(time.Second<<d, 8*time.Second); got != want {
			t.Errorf("delay(%d) = %v, want %v", d, got, want)
		}
	}
}

// TestAdminKeyCannotBeLockedByOthers: the admin key has no account count:
// however many clients fail, one that has not is checked.
func TestAdminKeyCannotBeLockedByOthers(t *testing.T) {
	now := t0
	s := testSignIn(testPolicy, &now)
	for i := range 30 {
		for range 3 {
			attempt(t, s, AdminKey, fmt.Sprint("client:", i), false, nil)
		}
	}
	if out, _ := attempt(t, s, AdminKey, "client:0", true, nil); out.Verdict != Refused {
		t.Errorf("a client that failed 3 times: %+v, want refused", out)
	}
	if out, ran := attempt(t, s, AdminKey, "client:admin", true, nil); out.Verdict != Passed || !ran {
		t.Errorf("the admin's own client: %+v ran %v", out, ran)
	}
}

func TestSignInSuccessClearsTheAccountOnly(t *testing.T) {
	now := t0
	s := testSignIn(testPolicy, &now)
	for range 2 {
		attempt(t, s, "account:a", "client:1", false, nil)
	}
	attempt(t, s, "account:a", "client:1", true, nil)
	for range 2 {
		attempt(t, s, "account:a", "client:1", false, nil)
	}
	if out, _ := attempt(t, s, "account:a", "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("a success did not clear the account's failures: %+v", out)
	}
	// The client's are kept: client:1 has 4; one more makes 5.
	attempt(t, s, "account:b", "client:1", false, nil)
	if out, _ := attempt(t, s, "account:c", "client:1", true, nil); out.Verdict != Refused {
		t.Errorf("a success cleared the client's failures: %+v", out)
	}
}

func TestSignInUndecidedCountsNothing(t *testing.T) {
	now := t0
	s := testSignIn(testPolicy, &now)
	down := errors.New("store down")
	for range 10 {
		if out, _ := attempt(t, s, "account:a", "client:1", false, down); out != (Outcome{}) {
			t.Fatalf("an undecided check: %+v", out)
		}
	}
	if out, _ := attempt(t, s, "account:a", "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("undecided checks were counted: %+v", out)
	}
	var off *SignIn // limits nothing
	for range 10 {
		attempt(t, off, "account:a", "client:1", false, nil)
	}
	if out, _ := attempt(t, off, "account:a", "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("a nil SignIn: %+v", out)
	}
	if !off.ResetEmail("a@example.com") {
		t.Error("a nil SignIn refuses a reset email")
	}
}

// TestMemoryBounded: a flood of distinct accounts and clients keeps at
// most MaxSubjects records, forgetting the least recently counted.
func TestMemoryBounded(t *testing.T) {
	now := t0
	p := testPolicy
	p.MaxSubjects = 100
	s := testSignIn(p, &now)
	for i := range 3 {
		attempt(t, s, "account:kept", "client:kept", false, nil)
		_ = i
	}
	for i := range 1000 {
		attempt(t, s, fmt.Sprint("account:", i), fmt.Sprint("client:", i), false, nil)
		if i%10 == 0 { // kept recent
			attempt(t, s, "account:kept", "client:kept", false, nil)
		}
	}
	if n := len(s.t.m); n > 100 || s.t.lru.Len() != n {
		t.Errorf("%d records (%d listed), want at most 100", n, s.t.lru.Len())
	}
	if out, _ := attempt(t, s, "account:kept", "client:kept", true, nil); out.Verdict != Refused {
		t.Errorf("a recently counted subject was forgotten: %+v", out)
	}
	// Windows that passed are dropped when met.
	now = now.Add(time.Minute)
	if out, _ := attempt(t, s, "account:kept", "client:kept", true, nil); out.Verdict != Passed {
		t.Errorf("after the window: %+v", out)
	}
}

func TestResetEmails(t *testing.T) {
	now := t0
	s := testSignIn(testPolicy, &now)
	for i := range 3 {
		if !s.ResetEmail("Ada@example.com") {
			t.Fatalf("email %d refused", i)
		}
	}
	if s.ResetEmail("ada@example.com ") {
		t.Error("a 4th email within the window")
	}
	if out, _ := attempt(t, s, DeveloperAccount("ada@example.com"), "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("reset emails limit the sign-in: %+v", out)
	}
	now = now.Add(time.Minute)
	if !s.ResetEmail("ada@example.com") {
		t.Error("refused after the window")
	}
}

func TestRetrySecondsRoundsUp(t *testing.T) {
	if s := (Outcome{RetryAfter: 1500 * time.Millisecond}).RetrySeconds(); s != 2 {
		t.Errorf("1.5s: %d, want 2", s)
	}
}

func TestCredentials(t *testing.T) {
	down := errors.New("store down")
	for _, c := range []struct {
		err    error
		ok     bool
		undec  error
		inCase string
	}{
		{nil, true, nil, "nil"},
		{keylens.Errorf(keylens.EUNAUTHORIZED, "wrong"), false, nil, "EUNAUTHORIZED"},
		{down, false, down, "another error"},
	} {
		if ok, err := Credentials(c.err); ok != c.ok || err != c.undec {
			t.Errorf("%s: %v %v", c.inCase, ok, err)
		}
	}
}

func TestKeys(t *testing.T) {
	// verify_credentials and the portal's login count under the same key.
	if DeveloperAccount(" Ada@Example.com ") != "account:ada@example.com" {
		t.Error(DeveloperAccount(" Ada@Example.com "))
	}
	if ConsoleAccount("Root@Example.com") == DeveloperAccount("root@example.com") {
		t.Error("an admin account and a developer account share a key")
	}
	r := httptest.NewRequest("POST", "/", nil)
	for addr, want := range map[string]string{
		"198.51.100.7:5000":           "client:198.51.100.7",
		"[2001:db8:1:2:3:4:5:6]:5000": "client:2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":  "client:2001:db8:1:2::/64",
		"[::ffff:198.51.100.7]:5000":  "client:198.51.100.7",
		"pipe":                        "client:pipe",
	} {
		r.RemoteAddr = addr
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := Client(r); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}
