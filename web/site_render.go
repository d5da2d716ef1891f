package web

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
)

// Rendering: the layout and its pages, security headers, error pages,
// redirects with a flash message.

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// siteView is what the layout needs of its site.
type siteView struct {
	Name, Static, Home, SignOut, SignIn, SignInLabel string
	Menu                                             []menuItem
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
// the mux's own 404 and 405, and a 500 page for a panic. A site at the
// root of its listener answers /favicon.ico too.
func (s *site) handle(mux *http.ServeMux) http.Handler {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+s.prefix+"static/", http.StripPrefix(s.prefix+"static/", cacheStatic(http.FileServerFS(static))))
	if s.prefix == "/" {
		mux.Handle("GET /favicon.ico", Favicon)
	}
	return s.recoverer(s.headers(s.notFound(mux)))
}

// Favicon answers /favicon.ico with the sites' icon, to anyone: browsers
// ask for it by themselves (pages name static/favicon.svg, but not every
// browser reads that), and a 401 there is an error on every page.
var Favicon http.Handler = cacheStatic(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(faviconSVG)
}))

var faviconSVG, _ = staticFS.ReadFile("static/favicon.svg")

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
	v.Site = siteView{Name: s.name, Static: s.prefix + "static/", Home: s.home, SignOut: s.signOut, SignIn: s.signInPath, SignInLabel: s.signInLabel, Menu: s.publicMenu}
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
// internal errors are logged, as in the REST API (a full store logs when
// it runs out of space and when it has space again, not per request).
func (s *site) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	if rest.ClientGone(r, err) {
		s.logger.Info(s.name+" client closed the request", "method", r.Method, "route", r.Pattern, "status", rest.StatusClientClosedRequest)
		w.WriteHeader(rest.StatusClientClosedRequest)
		return
	}
	code := keylens.ErrorCode(err)
	if code == keylens.EINTERNAL {
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

// redirect answers a POST with 303 to path, with a flash message by name.
func redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		path, frag, _ := strings.Cut(path, "#")
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "done=" + flash
		if frag != "" {
			path += "#" + frag
		}
		http.Redirect(w, r, path, http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// formValue is a form field, trimmed.
func formValue(r *http.Request, name string) string { return strings.TrimSpace(r.PostFormValue(name)) }

// maxFormBytes bounds a form body.
const maxFormBytes = 1 << 20

// gravatarOrigin is where the console's avatars come from, when they do:
// the Content-Security-Policy then allows its images.
const gravatarOrigin = "https://www.gravatar.com"
