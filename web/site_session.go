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

	"github.com/keylens/keylens"
)

// Sessions and CSRF: a request's signed-in session, the pages that need
// one, the token every form of a session carries, and the cookies.

// session is the signed-in session of a request.
type session struct {
	*keylens.Session
	csrf string // the CSRF token of this session's forms
}

func (s *session) who() string {
	if s.AdminID == "" && s.DeveloperID == "" {
		return keylens.ActorAdminKey
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

// authed lets through requests of a live session this site accepts, with
// the session and its actor in the context; a POST must also carry the
// session's CSRF token and come from this site. Without a live session, a
// request goes to sign-in and changes nothing.
func (s *site) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.live(w, r)
		if !ok {
			return
		}
		if sess == nil {
			target := s.signInPath
			if _, err := r.Cookie(s.sessionCookie); err == nil {
				target += "?done=expired"
			}
			if r.Method == http.MethodGet && r.URL.Path != s.prefix {
				sep := "?"
				if strings.Contains(target, "?") {
					sep = "&"
				}
				target += sep + "next=" + url.QueryEscape(r.URL.RequestURI())
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil || !s.sameOrigin(r) ||
				subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.csrf)) != 1 {
				s.refuseForm(w, r, sess)
				return
			}
		}
		now := s.now()
		if sess.NeedsTouch(now) {
			if err := s.sessions.TouchSession(r.Context(), sess.IDHash, now); err != nil {
				s.logger.Warn("recording a session's activity failed", "site", s.name, "err", err)
			}
		}
		next(w, r.WithContext(s.withSession(r.Context(), sess)))
	})
}

// optional serves pages open to everyone, with the session in the context
// when the visitor has a live one (the menu then shows their pages).
func (s *site) optional(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.live(w, r)
		if !ok {
			return
		}
		if sess != nil {
			r = r.WithContext(s.withSession(r.Context(), sess))
		}
		next(w, r)
	})
}

func (s *site) withSession(ctx context.Context, sess *session) context.Context {
	ctx = context.WithValue(ctx, sessionKey{}, sess)
	return keylens.WithActor(ctx, sess.Actor(s.via))
}

// live returns the request's live session, nil for none (a dead one's
// record and cookie are removed); false when it has answered (a store
// error).
func (s *site) live(w http.ResponseWriter, r *http.Request) (*session, bool) {
	ck, err := r.Cookie(s.sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, true
	}
	st, err := s.sessions.FindSession(r.Context(), keylens.SessionHash(ck.Value))
	if err != nil && keylens.ErrorCode(err) != keylens.ENOTFOUND {
		s.errorPage(w, r, err)
		return nil, false
	}
	if st == nil || st.Expired(s.now()) || !s.accept(st) {
		if st != nil && st.Expired(s.now()) {
			_ = s.sessions.DeleteSession(r.Context(), st.IDHash)
		}
		s.clearCookie(w, s.sessionCookie)
		return nil, true
	}
	return &session{Session: st, csrf: csrfToken(ck.Value)}, true
}

// refuseForm answers a POST whose CSRF token is missing or wrong: 403,
// and nothing is changed.
func (s *site) refuseForm(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := context.WithValue(r.Context(), sessionKey{}, sess)
	s.render(w, r.WithContext(ctx), http.StatusForbidden, "error", view{Title: "Form refused",
		Data: "This form was not sent from this session, or it was sent from a page older than your sign-in. " +
			"Nothing was changed. Go back, reload the page and try again."})
}

// sameOrigin refuses a request whose Origin (or, without one, whose
// Sec-Fetch-Site) says it came from another site. Browsers send one of
// them with every form POST; a request with neither is not a browser's and
// stands on its CSRF token alone.
func (s *site) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && (u.Host == r.Host || u.Host == s.publicHost)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}

func (s *site) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: s.prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
}

func (s *site) clearCookie(w http.ResponseWriter, name string) {
	s.setCookie(w, name, "", -1)
}

// randomToken returns 256 random bits in base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
