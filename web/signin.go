package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens/portalstore"
)

type signInData struct {
	Email string
	Next  string
}

// GET /admin/signin
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, signInData{Next: safeNext(r.URL.Query().Get("next"))}, "")
}

// renderSignIn shows the sign-in forms with a fresh pre-session CSRF
// token (kept if the browser has one).
func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, d signInData, errMsg string) {
	token := ""
	if ck, err := r.Cookie(signInCookie); err == nil && len(ck.Value) == 43 {
		token = ck.Value
	} else {
		token = randomToken()
	}
	c.setCookie(w, signInCookie, token, 3600)
	c.render(w, r, status, "signin", view{Title: "Sign in", CSRF: token, Flash: flash(r), Error: errMsg, Data: d})
}

// checkSignInForm parses a sign-in POST and checks its pre-session token.
func (c *Console) checkSignInForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ck, err := r.Cookie(signInCookie)
	if r.ParseForm() != nil || err != nil || ck.Value == "" || !c.sameOrigin(r) ||
		subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) != 1 {
		c.render(w, r, http.StatusForbidden, "error", view{Title: "Form refused",
			Data: "This sign-in form is stale or was not sent from this console. Open the sign-in page again."})
		return false
	}
	return true
}

// POST /admin/signin: email and password of an admin account.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !c.checkSignInForm(w, r) {
		return
	}
	email, password := formValue(r, "email"), r.PostFormValue("password")
	d := signInData{Email: email, Next: safeNext(r.PostFormValue("next"))}
	account := "console-account:" + strings.ToLower(email)
	if c.refuseGuessing(w, r, d, account) {
		return
	}
	a, err := c.Admins.VerifyAdmin(r.Context(), email, password)
	switch portalstore.ErrorCode(err) {
	case "":
	case portalstore.EUNAUTHORIZED:
		c.PerAccount.Fail(account)
		c.PerClient.Fail(clientSubject(r))
		c.renderSignIn(w, r, http.StatusUnauthorized, d, "Wrong email or password, or the account is disabled.")
		return
	default:
		c.errorPage(w, r, err)
		return
	}
	c.PerAccount.Succeed(account)
	c.startSession(w, r, &portalstore.Session{AdminID: a.ID}, d.Next)
}

// POST /admin/signin/key: the admin key.
func (c *Console) signInWithKey(w http.ResponseWriter, r *http.Request) {
	if !c.checkSignInForm(w, r) {
		return
	}
	d := signInData{Next: safeNext(r.PostFormValue("next"))}
	const account = "console-account:admin-key"
	if c.refuseGuessing(w, r, d, account) {
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	sum := sha256.Sum256([]byte(key))
	if key == "" || subtle.ConstantTimeCompare(sum[:], c.AdminKeyHash[:]) != 1 {
		c.PerAccount.Fail(account)
		c.PerClient.Fail(clientSubject(r))
		c.renderSignIn(w, r, http.StatusUnauthorized, d, "That is not the admin key.")
		return
	}
	c.PerAccount.Succeed(account)
	c.startSession(w, r, &portalstore.Session{AdminKey: portalstore.AdminKeyFingerprint(c.AdminKeyHash)}, d.Next)
}

// startSession stores a new session (a new id at every sign-in, so that a
// session id planted before sign-in is worth nothing) and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, s *portalstore.Session, next string) {
	now := c.Now()
	if _, err := c.Sessions.DeleteExpiredSessions(r.Context(), now); err != nil {
		c.Logger.Warn("removing expired console sessions failed", "err", err)
	}
	id, hash := portalstore.NewSessionID()
	s.IDHash, s.Created, s.LastSeen = hash, now, now
	if err := c.Sessions.CreateSession(r.Context(), s); err != nil {
		c.errorPage(w, r, err)
		return
	}
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" {
		_ = c.Sessions.DeleteSession(r.Context(), portalstore.SessionHash(old.Value))
	}
	c.setCookie(w, sessionCookie, id, int(portalstore.SessionMaxAge/time.Second))
	c.clearCookie(w, signInCookie)
	if next == "" {
		next = Prefix + "developers"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// refuseGuessing answers 429 with Retry-After, before any password is
// checked, while the account or the client has failed too often lately.
func (c *Console) refuseGuessing(w http.ResponseWriter, r *http.Request, d signInData, account string) bool {
	left, blocked := c.PerAccount.Blocked(account)
	if l, b := c.PerClient.Blocked(clientSubject(r)); b && l > left {
		left, blocked = l, true
	}
	if !blocked {
		return false
	}
	secs := int(math.Ceil(left.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	c.renderSignIn(w, r, http.StatusTooManyRequests, d,
		fmt.Sprintf("Too many failed sign-ins. Try again in %s.", humanDuration(left)))
	return true
}

// POST /admin/signout
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if err := c.Sessions.DeleteSession(r.Context(), sessionFrom(r).IDHash); err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.clearCookie(w, sessionCookie)
	http.Redirect(w, r, Prefix+"signin?done=signed-out", http.StatusSeeOther)
}

// clientSubject is the limiter subject of the request's client: the
// connection's peer address (forwarded-for headers are a client's to
// forge). The REST API's sign-in counts under the same name.
func clientSubject(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "client:" + host
}

// safeNext keeps a post-sign-in destination only when it is a console
// page: never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, Prefix+"signin") {
		return ""
	}
	return next
}

func humanDuration(d time.Duration) string {
	switch m := int(math.Ceil(d.Minutes())); {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
	case m == 1:
		return "1 minute"
	default:
		return fmt.Sprintf("%d minutes", m)
	}
}
