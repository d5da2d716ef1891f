package guard

import (
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

// SignIn is the one sign-in flow: the REST API's verify_credentials, the
// console's and the portal's sign-ins all attempt through it. Give every
// sign-in the same pair of limiters, so that guesses count once, wherever
// they are made. A nil limiter limits nothing.
type SignIn struct {
	PerAccount, PerClient *Limiter
}

// Verdict is how an attempt ended.
type Verdict int

const (
	// Refused: the account or the client has failed too often lately; the
	// check was not run.
	Refused Verdict = iota + 1
	// Wrong: the check failed; counted against the account and the client.
	Wrong
	// Passed: the check passed; the account's failures are forgotten (the
	// client's are not).
	Passed
)

// Outcome is the end of an attempt: its Verdict and, when Refused, how
// long the refusal lasts still.
type Outcome struct {
	Verdict    Verdict
	RetryAfter time.Duration
}

// RetrySeconds is RetryAfter in whole seconds, rounded up: a Retry-After
// header's value.
func (o Outcome) RetrySeconds() int { return int(math.Ceil(o.RetryAfter.Seconds())) }

// Attempt is one sign-in of account (a key made by DeveloperAccount,
// ConsoleAccount or AdminKey) from client (Client): refused, before check
// runs, while either has failed too often lately (RetryAfter the longer
// wait of the two); otherwise check runs. check's ok is whether the
// credentials are right; its error, when it could not tell (the store
// failed), is returned with a zero Outcome and nothing counted.
func (s SignIn) Attempt(account, client string, check func() (ok bool, err error)) (Outcome, error) {
	if left, blocked := s.Blocked(account, client); blocked {
		return Outcome{Verdict: Refused, RetryAfter: left}, nil
	}
	ok, err := check()
	switch {
	case err != nil:
		return Outcome{}, err
	case !ok:
		s.Fail(account, client)
		return Outcome{Verdict: Wrong}, nil
	}
	s.PerAccount.Succeed(account)
	return Outcome{Verdict: Passed}, nil
}

// Blocked reports whether account or client is refused now, and for how
// long still: the longer of the two.
func (s SignIn) Blocked(account, client string) (time.Duration, bool) {
	left, blocked := s.PerAccount.Blocked(account)
	if l, b := s.PerClient.Blocked(client); b && l > left {
		left, blocked = l, true
	}
	return left, blocked
}

// Fail counts a failed sign-in against account and client; for a wrong
// password outside Attempt (a password change's current password).
func (s SignIn) Fail(account, client string) {
	s.PerAccount.Fail(account)
	s.PerClient.Fail(client)
}

// Credentials is a check's answer from a keylens error of verifying
// credentials: nil is right, EUNAUTHORIZED wrong, any other error
// undecided.
func Credentials(err error) (ok bool, _ error) {
	switch keylens.ErrorCode(err) {
	case "":
		return true, nil
	case keylens.EUNAUTHORIZED:
		return false, nil
	}
	return false, err
}

// Limiter keys: the subjects sign-ins count under. The REST API's
// verify_credentials and the portal's login name a developer account
// alike, so that either's failures block both.

// DeveloperAccount is a developer account's key: its email or username,
// trimmed, in any case.
func DeveloperAccount(email string) string {
	return "account:" + strings.ToLower(strings.TrimSpace(email))
}

// ConsoleAccount is an admin account's key, its email's, apart from the
// developer accounts.
func ConsoleAccount(email string) string {
	return "console-account:" + strings.ToLower(strings.TrimSpace(email))
}

// AdminKey is the key of the console's sign-in with the admin key: one
// account, whoever guesses.
const AdminKey = "console-account:admin-key"

// PasswordReset is the key an address's password-reset emails are counted
// under (in PerAccount).
func PasswordReset(email string) string {
	return "password-reset:" + strings.ToLower(strings.TrimSpace(email))
}

// Client is the key of r's client: the connection's peer address
// (forwarded-for headers are a client's to forge).
func Client(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "client:" + host
}
