package guard

import (
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keylens/keylens"
)

// Policy is what SignIn limits. A zero or negative limit limits nothing.
type Policy struct {
	// Window is how long failures count, from a subject's first.
	Window time.Duration
	// PairMax: failures of one account from one client before that
	// client is refused for that account.
	PairMax int
	// ClientMax: failures from one client, any accounts, before it is
	// refused everywhere.
	ClientMax int
	// AccountDelayAfter: failures of one account before a client that
	// has itself failed on it waits between attempts: BaseDelay after the
	// account's latest failure, doubling with each failure beyond, up to
	// MaxDelay.
	AccountDelayAfter   int
	BaseDelay, MaxDelay time.Duration
	// AccountMax: the account's ceiling; beyond it a client that has
	// failed on it is refused until the account's window passes.
	AccountMax int
	// MaxSubjects bounds the records kept (DefaultMaxSubjects when 0):
	// beyond, the least recently counted are forgotten.
	MaxSubjects int
}

// DefaultPolicy is keylens's: 10 failures per account and client, 50 per
// client, per 15 minutes; an account's attempts from clients that failed
// on it are delayed from its 10th failure (1 s, doubling, at most a
// minute) and refused from its 100th, the most NIST SP 800-63B allows.
var DefaultPolicy = Policy{Window: 15 * time.Minute, PairMax: 10, ClientMax: 50,
	AccountDelayAfter: 10, BaseDelay: time.Second, MaxDelay: time.Minute, AccountMax: 100}

// SignIn is the one sign-in flow: the REST API's verify_credentials, the
// console's and the portal's sign-ins attempt through it. Give every
// sign-in the same SignIn, so that guesses count once, wherever they are
// made. A nil SignIn limits nothing. Safe for concurrent use; its memory
// is bounded by Policy.MaxSubjects.
type SignIn struct {
	p   Policy
	now func() time.Time

	mu sync.Mutex
	t  *table
}

// NewSignIn returns a sign-in flow limited by p.
func NewSignIn(p Policy) *SignIn {
	return &SignIn{p: p, now: time.Now, t: newTable(p.MaxSubjects)}
}

// Verdict is how an attempt ended.
type Verdict int

const (
	// Refused: the client has failed too often lately, on the account or
	// anywhere; the check was not run.
	Refused Verdict = iota + 1
	// Wrong: the check failed; counted against the account and the client.
	Wrong
	// Passed: the check passed; the account's failures are forgotten (the
	// client's elsewhere are not).
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
// ConsoleAccount or AdminKey) from client (Client). Refused, before check
// runs, while the limits refuse client for account (RetryAfter: until
// they no longer do). Otherwise a failure is reserved, check runs, and
// the failure is given back unless check's answer is wrong: however many
// attempts run at once, no more checks run than the limits allow. check's
// ok is whether the credentials are right; its error, when it could not
// tell (the store failed), is returned with a zero Outcome and nothing
// counted.
func (s *SignIn) Attempt(account, client string, check func() (ok bool, err error)) (Outcome, error) {
	if s == nil {
		ok, err := check()
		switch {
		case err != nil:
			return Outcome{}, err
		case !ok:
			return Outcome{Verdict: Wrong}, nil
		}
		return Outcome{Verdict: Passed}, nil
	}
	if wait := s.reserve(account, client); wait > 0 {
		return Outcome{Verdict: Refused, RetryAfter: wait}, nil
	}
	ok, err := check()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		s.giveBack(account, client)
		return Outcome{}, err
	case !ok:
		return Outcome{Verdict: Wrong}, nil
	}
	s.giveBack(account, client)
	// Consecutive failures: a success ends the account's run, from
	// wherever it came.
	s.t.drop(pairKey(account, client))
	s.t.drop(account)
	return Outcome{Verdict: Passed}, nil
}

// reserve counts a failure of account from client and returns 0, or,
// when the limits refuse the attempt, counts nothing and returns how long
// the refusal lasts.
func (s *SignIn) reserve(account, client string) time.Duration {
	p := &s.p
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	pair := s.t.peek(pairKey(account, client), now, p.Window)
	cl := s.t.peek(client, now, p.Window)
	var wait time.Duration
	if p.PairMax > 0 && pair.count() >= p.PairMax {
		wait = max(wait, pair.left(now, p.Window))
	}
	if p.ClientMax > 0 && cl.count() >= p.ClientMax {
		wait = max(wait, cl.left(now, p.Window))
	}
	counted := account != AdminKey
	if acc := s.t.peek(account, now, p.Window); counted && pair.count() > 0 {
		// Only a client that has failed on the account meets the
		// account's own limits.
		switch n := acc.count(); {
		case p.AccountMax > 0 && n >= p.AccountMax:
			wait = max(wait, acc.left(now, p.Window))
		case p.AccountDelayAfter > 0 && n >= p.AccountDelayAfter:
			wait = max(wait, acc.last.Add(p.delay(n-p.AccountDelayAfter)).Sub(now))
		}
	}
	if wait > 0 {
		// Still refused: not the least recently used, whose records a
		// flood of new subjects would push out.
		s.t.touch(pair)
		s.t.touch(cl)
		return wait
	}
	s.t.count(pairKey(account, client), now, p.Window)
	s.t.count(client, now, p.Window)
	if counted {
		s.t.count(account, now, p.Window)
	}
	return 0
}

// giveBack undoes reserve's counts. s.mu is held.
func (s *SignIn) giveBack(account, client string) {
	s.t.uncount(pairKey(account, client))
	s.t.uncount(client)
	if account != AdminKey {
		s.t.uncount(account)
	}
}

// delay is the wait after an account's latest failure when it has k
// failures beyond AccountDelayAfter: BaseDelay doubled k times, at most
// MaxDelay.
func (p *Policy) delay(k int) time.Duration {
	d := p.BaseDelay
	for range k {
		if d >= p.MaxDelay {
			break
		}
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// ResetEmail reports whether another password-reset email may go to email
// now, and counts it: at most PairMax per window per address.
func (s *SignIn) ResetEmail(email string) bool {
	if s == nil || s.p.PairMax <= 0 {
		return true
	}
	now := s.now()
	subject := PasswordReset(email)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.peek(subject, now, s.p.Window).count() >= s.p.PairMax {
		return false
	}
	s.t.count(subject, now, s.p.Window)
	return true
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
// alike, so that either's failures count for both.

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

// AdminKey is the key of the console's sign-in with the admin key. It has
// no account count: only its clients' failures limit it.
const AdminKey = "console-account:admin-key"

// PasswordReset is the key an address's password-reset emails are counted
// under.
func PasswordReset(email string) string {
	return "password-reset:" + strings.ToLower(strings.TrimSpace(email))
}

// pairKey is the key of an account's failures from one client.
func pairKey(account, client string) string { return account + "\x00" + client }

// Client is the key of r's client: the connection's peer address, an IPv6
// one by its /64 (one host commonly holds a whole /64). Forwarded-for
// headers are a client's to forge, and keylens has no list of proxies to
// believe them from: behind a proxy, every client is the proxy.
func Client(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip.To4() != nil {
		host = ip.To4().String()
	} else if ip != nil {
		host = ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return "client:" + host
}
