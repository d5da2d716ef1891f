package web

import (
	"crypto/subtle"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
)

// Sign-in: the forms shown before there is a session, failure limits,
// starting and ending a session.

// preSessionToken is the token of the forms shown before there is a
// session (sign-in, sign-up, password reset): a double-submit token in a
// cookie, so that nobody can sign a browser in to their own account. An
// existing one is kept.
func (s *site) preSessionToken(w http.ResponseWriter, r *http.Request) string {
	token := ""
	if ck, err := r.Cookie(s.signInCookie); err == nil && len(ck.Value) == 43 {
		token = ck.Value
	} else {
		token = randomToken()
	}
	s.setCookie(w, s.signInCookie, token, 3600)
	return token
}

// renderSignIn shows the sign-in page with a pre-session token.
func (s *site) renderSignIn(w http.ResponseWriter, r *http.Request, status int, data any, errMsg string) {
	s.renderPublic(w, r, status, s.signInPage, view{Title: "Sign in", Data: data, Error: errMsg})
}

// renderPublic renders a page whose forms carry the pre-session token.
func (s *site) renderPublic(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	v.CSRF = s.preSessionToken(w, r)
	if v.Flash == "" {
		v.Flash = s.flash(r)
	}
	s.render(w, r, status, page, v)
}

// checkPublicForm parses a POST of a page shown before sign-in and checks
// its pre-session token.
func (s *site) checkPublicForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	ck, err := r.Cookie(s.signInCookie)
	if r.ParseForm() != nil || err != nil || ck.Value == "" || !s.sameOrigin(r) ||
		subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ck.Value)) != 1 {
		s.render(w, r, http.StatusForbidden, "error", view{Title: "Form refused",
			Data: "This form is stale or was not sent from this site. Open the page again."})
		return false
	}
	return true
}

// startSession stores a new session (a new id at every sign-in, so that a
// session id planted before sign-in is worth nothing) and sets its cookie.
func (s *site) startSession(w http.ResponseWriter, r *http.Request, st *keylens.Session, next string) {
	now := s.now()
	if _, err := s.sessions.DeleteExpiredSessions(r.Context(), now); err != nil {
		s.logger.Warn("removing expired sessions failed", "err", err)
	}
	id, hash := keylens.NewSessionID()
	st.IDHash, st.Created, st.LastSeen = hash, now, now
	if err := s.sessions.CreateSession(r.Context(), st); err != nil {
		s.errorPage(w, r, err)
		return
	}
	if old, err := r.Cookie(s.sessionCookie); err == nil && old.Value != "" {
		_ = s.sessions.DeleteSession(r.Context(), keylens.SessionHash(old.Value))
	}
	s.setCookie(w, s.sessionCookie, id, int(keylens.SessionMaxAge/time.Second))
	s.clearCookie(w, s.signInCookie)
	if next == "" {
		next = s.home
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signInWithPassword is a password sign-in, the console's and the
// portal's: verify's EUNAUTHORIZED is a wrong password, its other errors
// undecided (see signInWith).
func (s *site) signInWithPassword(w http.ResponseWriter, r *http.Request, data any, account, next, wrong string,
	verify func() (*keylens.Session, error)) {
	s.signInWith(w, r, data, account, next, wrong, func() (*keylens.Session, bool, error) {
		st, err := verify()
		ok, err := guard.Credentials(err)
		return st, ok, err
	})
}

// signInWith is a sign-in of account through the sign-in flow
// (guard.SignIn): refused with 429 and Retry-After, before check runs,
// while this client has failed too often lately (on account or
// anywhere); a wrong check is counted and answered with wrong; an undecided one is an
// error page; the session of a right one is started, going on to next.
func (s *site) signInWith(w http.ResponseWriter, r *http.Request, data any, account, next, wrong string,
	check func() (st *keylens.Session, ok bool, err error)) {
	var st *keylens.Session
	out, err := s.signIn.Attempt(account, guard.Client(r), func() (ok bool, err error) {
		st, ok, err = check()
		return ok, err
	})
	switch {
	case err != nil:
		s.errorPage(w, r, err)
	case out.Verdict == guard.Refused:
		w.Header().Set("Retry-After", strconv.Itoa(out.RetrySeconds()))
		s.renderSignIn(w, r, http.StatusTooManyRequests, data,
			fmt.Sprintf("Too many failed sign-ins. Try again in %s.", humanDuration(out.RetryAfter)))
	case out.Verdict == guard.Wrong:
		s.renderSignIn(w, r, http.StatusUnauthorized, data, wrong)
	default:
		s.startSession(w, r, st, next)
	}
}

// signOutHandler ends the request's session.
func (s *site) signOutHandler(w http.ResponseWriter, r *http.Request) {
	if err := s.sessions.DeleteSession(r.Context(), sessionFrom(r).IDHash); err != nil {
		s.errorPage(w, r, err)
		return
	}
	s.clearCookie(w, s.sessionCookie)
	http.Redirect(w, r, s.signInPath+"?done=signed-out", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in destination only when it is a page of
// this site: never another site.
func (s *site) safeNext(next string) string {
	if !strings.HasPrefix(next, s.prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, s.signInPath) {
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
