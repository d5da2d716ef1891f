package guard

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// testSignIn is a SignIn refusing an account after 3 failures and a client
// after 5, within a minute, on a clock the test moves.
func testSignIn(now *time.Time) SignIn {
	s := SignIn{PerAccount: New(3, time.Minute), PerClient: New(5, time.Minute)}
	s.PerAccount.now = func() time.Time { return *now }
	s.PerClient.now = func() time.Time { return *now }
	return s
}

// attempt runs one attempt whose check answers ok and err, and reports
// whether the check ran.
func attempt(t *testing.T, s SignIn, account, client string, ok bool, err error) (Outcome, bool) {
	t.Helper()
	ran := false
	out, gotErr := s.Attempt(account, client, func() (bool, error) { ran = true; return ok, err })
	if !errors.Is(gotErr, err) {
		t.Fatalf("Attempt's error %v, want %v", gotErr, err)
	}
	return out, ran
}

func TestSignInLimitsPerAccount(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := testSignIn(&now)
	for i := range 3 {
		if out, ran := attempt(t, s, "account:a", "client:1", false, nil); out.Verdict != Wrong || !ran {
			t.Fatalf("wrong password %d: %+v ran %v", i, out, ran)
		}
	}
	now = now.Add(10 * time.Second)
	out, ran := attempt(t, s, "account:a", "client:2", true, nil)
	if out.Verdict != Refused || ran || out.RetryAfter != 50*time.Second || out.RetrySeconds() != 50 {
		t.Errorf("after 3 failures, from another client: %+v ran %v, want refused for 50s, the check not run", out, ran)
	}
	if out, _ := attempt(t, s, "account:b", "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("another account: %+v", out)
	}
	now = now.Add(50 * time.Second)
	if out, ran := attempt(t, s, "account:a", "client:2", true, nil); out.Verdict != Passed || !ran {
		t.Errorf("once the window passed: %+v ran %v", out, ran)
	}
}

func TestSignInLimitsPerClient(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := testSignIn(&now)
	for i := range 5 { // five accounts, one failure each
		attempt(t, s, "account:"+string(rune('a'+i)), "client:1", false, nil)
		now = now.Add(time.Second)
	}
	out, ran := attempt(t, s, "account:z", "client:1", true, nil)
	if out.Verdict != Refused || ran || out.RetryAfter != 55*time.Second {
		t.Errorf("after 5 failures from one client: %+v ran %v, want refused for 55s, the check not run", out, ran)
	}
	if out, _ := attempt(t, s, "account:z", "client:2", true, nil); out.Verdict != Passed {
		t.Errorf("the account from another client: %+v", out)
	}
	// Refused by both: the longer wait.
	for range 3 {
		attempt(t, s, "account:y", "client:3", false, nil)
	}
	now = now.Add(30 * time.Second)
	if out, _ := attempt(t, s, "account:y", "client:1", true, nil); out.Verdict != Refused || out.RetryAfter != time.Minute-30*time.Second {
		t.Errorf("refused by both: %+v, want the account's 30s", out)
	}
}

func TestSignInSuccessClearsTheAccountOnly(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := testSignIn(&now)
	for range 2 {
		attempt(t, s, "account:a", "client:1", false, nil)
	}
	attempt(t, s, "account:a", "client:1", true, nil)
	// The account's two failures are forgotten: three more to be refused.
	for range 2 {
		attempt(t, s, "account:a", "client:2", false, nil)
	}
	if out, _ := attempt(t, s, "account:a", "client:2", true, nil); out.Verdict != Passed {
		t.Errorf("a success did not clear the account's failures: %+v", out)
	}
	// The client's are kept: client:1 has 2; three more make 5.
	for range 3 {
		attempt(t, s, "account:b", "client:1", false, nil)
	}
	if out, _ := attempt(t, s, "account:c", "client:1", true, nil); out.Verdict != Refused {
		t.Errorf("a success cleared the client's failures: %+v", out)
	}
}

func TestSignInUndecidedCountsNothing(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s := testSignIn(&now)
	down := errors.New("store down")
	for range 10 {
		if out, _ := attempt(t, s, "account:a", "client:1", false, down); out != (Outcome{}) {
			t.Fatalf("an undecided check: %+v", out)
		}
	}
	if out, _ := attempt(t, s, "account:a", "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("undecided checks were counted: %+v", out)
	}
	var off SignIn // nil limiters limit nothing
	for range 10 {
		attempt(t, off, "account:a", "client:1", false, nil)
	}
	if out, _ := attempt(t, off, "account:a", "client:1", true, nil); out.Verdict != Passed {
		t.Errorf("nil limiters: %+v", out)
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
	r.RemoteAddr = "198.51.100.7:5000"
	if Client(r) != "client:198.51.100.7" {
		t.Error(Client(r))
	}
	r.RemoteAddr = "pipe"
	if Client(r) != "client:pipe" {
		t.Error(Client(r))
	}
}
