package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/rest"
)

// site is what the admin console and the developer portal share, one
// implementation for both: pages rendered from the one layout and
// stylesheet, security headers, server-side sessions (one kind of stored
// session, told apart by whose it is), a CSRF token per session on every
// form, sign-in forms with a pre-session token, sign-in failure limits,
// error pages.
type site struct {
	name       string // in every page title
	prefix     string // where the site is served: "/admin/", "/"
	home       string // where a signed-in visitor starts
	signInPath string
	signInPage string // the template of the sign-in form
	signOut    string // the sign-out form's action
	// cookie names: the session's, and the sign-in form's pre-session
	// token's. Cookies are per host, not per port: the console's and the
	// portal's names differ so that neither ever reads the other's.
	sessionCookie, signInCookie string
	menu, publicMenu            []menuItem
	// accept says which stored sessions count here: an admin's on the
	// console, a developer's on the portal.
	accept func(*keylens.Session) bool
	via    string // the audit trail's Via for this site's sessions
	// flashes are the messages a redirect may name (?done=): a page
	// shows only these, never text from the URL.
	flashes map[string]string

	sessions   keylens.SessionService
	secure     bool
	publicHost string
	perAccount *guard.Limiter
	perClient  *guard.Limiter
	logger     *slog.Logger
	now        func() time.Time

	pages map[string]*template.Template
	csp   string
}

// menuItem is an entry of the site's menu; Name is what view.Nav marks.
type menuItem struct{ Name, Label, Path string }

// siteView is what the layout needs of its site.
type siteView struct {
	Name, Static, Home, SignOut, SignIn string
	Menu                                []menuItem
}

// view is what every page template gets: the page's own data in Data.
type view struct {
	Title string
	Nav   string // the menu entry to mark current
	Who   string // who is signed in: an email, or "admin key"
	CSRF  string // the token of the page's forms
	// SessionCSRF is the session's token, for the sign-out form: a page
	// shown before sign-in has another one for its own forms.
	SessionCSRF string
	Flash       string
	Error       string
	Data        any
	Site        siteView
}

// parse parses each page of names with the shared layout and parts.
func (s *site) parse(names []string, gravatar bool) error {
	s.pages = map[string]*template.Template{}
	for _, name := range names {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/chart.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	img := "'self'"
	if gravatar {
		img += " " + gravatarOrigin
	}
	s.csp = "default-src 'self'; img-src " + img + "; style-src 'self'; script-src 'self'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
	return nil
}

// handle wraps the site's mux: static files, security headers, a page for
// the mux's own 404 and 405, and a 500 page for a panic.
func (s *site) handle(mux *http.ServeMux) http.Handler {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+s.prefix+"static/", http.StripPrefix(s.prefix+"static/", cacheStatic(http.FileServerFS(static))))
	return s.recoverer(s.headers(s.notFound(mux)))
}

// headers sets the security headers every response carries.
func (s *site) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, s.prefix+"static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// notFound answers the mux's own 404 and 405 with a page.
func (s *site) notFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			s.errorPage(w, r, keylens.Errorf(keylens.ENOTFOUND, "There is no such page."))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 page.
func (s *site) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("panic serving "+s.name+" request", "method", r.Method, "route", r.Pattern, "panic", v)
				s.errorPage(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// render writes page name with status. The page is rendered into a buffer
// first, so that a template error answers 500 rather than half a page.
func (s *site) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	if sess := sessionFrom(r); sess != nil {
		v.Who, v.SessionCSRF = sess.who(), sess.csrf
		if v.CSRF == "" {
			v.CSRF = sess.csrf
		}
	}
	v.Site = siteView{Name: s.name, Static: s.prefix + "static/", Home: s.home, SignOut: s.signOut, SignIn: s.signInPath, Menu: s.publicMenu}
	if v.Who != "" {
		v.Site.Menu = s.menu
	}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, v); err != nil {
		s.logger.Error("rendering a page", "site", s.name, "page", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers err with its status and its caller-safe message. Only
// internal errors are logged, as in the REST API.
func (s *site) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	code := keylens.ErrorCode(err)
	if code == keylens.EINTERNAL || code == keylens.EFULL {
		s.logger.Error(s.name+" request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	status := rest.HTTPStatus(code)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.render(w, r, status, "error", view{Title: http.StatusText(status), Data: keylens.ErrorMessage(err)})
}

// flash is the message the request's ?done= names, if it is one.
func (s *site) flash(r *http.Request) string { return s.flashes[r.URL.Query().Get("done")] }

// ---- sessions and CSRF ----

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

// ---- sign-in ----

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

// refuseGuessing answers 429 with Retry-After, before any password is
// checked, while the account or the client has failed too often lately.
func (s *site) refuseGuessing(w http.ResponseWriter, r *http.Request, data any, account string) bool {
	left, blocked := s.perAccount.Blocked(account)
	if l, b := s.perClient.Blocked(clientSubject(r)); b && l > left {
		left, blocked = l, true
	}
	if !blocked {
		return false
	}
	secs := int(math.Ceil(left.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.renderSignIn(w, r, http.StatusTooManyRequests, data,
		fmt.Sprintf("Too many failed sign-ins. Try again in %s.", humanDuration(left)))
	return true
}

// signInWithPassword is a password sign-in, the console's and the
// portal's: refused while account or client is blocked; verify's
// EUNAUTHORIZED is counted against both and answered with wrong; its
// session is started otherwise, going on to next.
func (s *site) signInWithPassword(w http.ResponseWriter, r *http.Request, data any, account, next, wrong string,
	verify func() (*keylens.Session, error)) {
	if s.refuseGuessing(w, r, data, account) {
		return
	}
	st, err := verify()
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EUNAUTHORIZED:
		s.failed(r, account)
		s.renderSignIn(w, r, http.StatusUnauthorized, data, wrong)
		return
	default:
		s.errorPage(w, r, err)
		return
	}
	s.perAccount.Succeed(account)
	s.startSession(w, r, st, next)
}

// failed counts a failed sign-in against the account and the client.
func (s *site) failed(r *http.Request, account string) {
	s.perAccount.Fail(account)
	s.perClient.Fail(clientSubject(r))
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
