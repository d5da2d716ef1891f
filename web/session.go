package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/keylens/keylens/portalstore"
)

// Cookie names. Both are HttpOnly, SameSite=Strict, scoped to the console,
// and Secure when the console is reached over https.
const (
	sessionCookie = "keylens_session"
	// signInCookie carries the sign-in form's CSRF token before there is
	// a session (a double-submit token): a sign-in cannot be forged
	// either, so nobody can sign a browser in to their own account.
	signInCookie = "keylens_signin"
)

// session is the signed-in session of a request.
type session struct {
	*portalstore.Session
	csrf string // the CSRF token of this session's forms
}

func (s *session) who() string {
	if s.AdminID == "" {
		return portalstore.ActorAdminKey
	}
	return s.Email
}

type sessionKey struct{}

func sessionFrom(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// csrfToken is the CSRF token of the session whose id is id: an HMAC of a
// fixed label under the raw session id, which only the browser holding the
// cookie knows. Nothing is stored; another session's token never matches.
func csrfToken(id string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("keylens console csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// authed lets through requests of a live session, with the session and
// its actor in the context; a POST must also carry the session's CSRF
// token and come from this console. Without a live session, a request
// goes to sign-in and changes nothing.
func (c *Console) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := c.Now()
		var s *portalstore.Session
		ck, err := r.Cookie(sessionCookie)
		if err == nil && ck.Value != "" {
			s, err = c.Sessions.FindSession(r.Context(), portalstore.SessionHash(ck.Value))
			if err != nil && portalstore.ErrorCode(err) != portalstore.ENOTFOUND {
				c.errorPage(w, r, err)
				return
			}
		}
		live := s != nil && !s.Expired(now) &&
			(s.AdminID != "" || s.AdminKey == portalstore.AdminKeyFingerprint(c.AdminKeyHash))
		if !live {
			if s != nil {
				_ = c.Sessions.DeleteSession(r.Context(), s.IDHash)
			}
			c.clearCookie(w, sessionCookie)
			target := Prefix + "signin"
			if s != nil || ck != nil {
				target += "?done=expired"
			}
			if r.Method == http.MethodGet && r.URL.Path != Prefix {
				sep := "?"
				if strings.Contains(target, "?") {
					sep = "&"
				}
				target += sep + "next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		sess := &session{Session: s, csrf: csrfToken(ck.Value)}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil || !c.sameOrigin(r) ||
				subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.csrf)) != 1 {
				c.refuseForm(w, r, sess)
				return
			}
		}
		if s.NeedsTouch(now) {
			if err := c.Sessions.TouchSession(r.Context(), s.IDHash, now); err != nil {
				c.Logger.Warn("recording a console session's activity failed", "err", err)
			}
		}
		ctx := context.WithValue(r.Context(), sessionKey{}, sess)
		ctx = portalstore.WithActor(ctx, s.Actor(portalstore.ViaConsole))
		next(w, r.WithContext(ctx))
	})
}

// refuseForm answers a POST whose CSRF token is missing or wrong: 403,
// and nothing is changed.
func (c *Console) refuseForm(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := context.WithValue(r.Context(), sessionKey{}, s)
	c.render(w, r.WithContext(ctx), http.StatusForbidden, "error", view{Title: "Form refused",
		Data: "This form was not sent from this console session, or it was sent from a page older than your sign-in. " +
			"Nothing was changed. Go back, reload the page and try again."})
}

// sameOrigin refuses a request whose Origin (or, without one, whose
// Sec-Fetch-Site) says it came from another site. Browsers send one of
// them with every form POST; a request with neither is not a browser's and
// stands on its CSRF token alone.
func (c *Console) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && (u.Host == r.Host || u.Host == c.PublicHost)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

func (c *Console) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteStrictMode})
}

func (c *Console) clearCookie(w http.ResponseWriter, name string) {
	c.setCookie(w, name, "", -1)
}

// randomToken returns 256 random bits in base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
