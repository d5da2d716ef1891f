// Package web is keylens's admin console: the Tyk Classic Portal's admin
// screens for developers, their keys and usage, key requests, the catalogue
// and configuration, admins and the audit trail, served under /admin/ on the
// admin listener.
//
// Pages are html/template, embedded, with one stylesheet and a small script
// for conveniences (copy buttons); every action is a plain form POST that
// works without JavaScript. Handlers are thin: they read a form, call the
// same portalstore services the REST API calls, and render. Sessions are
// server-side (session.go), every form carries a CSRF token tied to its
// session, and every response carries a strict Content-Security-Policy.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/portalstore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/admin/"

// Config is what the console serves and how.
type Config struct {
	Developers portalstore.DeveloperService
	Catalogue  portalstore.CatalogueService
	Keys       portalstore.KeyService
	Hits       portalstore.HitService
	Admins     portalstore.AdminService
	Sessions   portalstore.SessionService
	Audit      portalstore.AuditService
	// AdminKeyHash is the SHA-256 of the admin key, which signs in too.
	AdminKeyHash [sha256.Size]byte
	// Secure marks cookies Secure: the console is reached over https
	// (--public-url https://…).
	Secure bool
	// PublicHost is the host (and port) browsers reach the console at,
	// when a proxy in front may change the Host header: a form POST's
	// Origin may name it as well as the request's Host.
	PublicHost string
	// Gravatar shows developers' Gravatar images over their initials; the
	// Content-Security-Policy then allows images from www.gravatar.com.
	Gravatar bool
	// SignInLimits refuse guessing at sign-in, per account and per client
	// address; nil limiters limit nothing.
	PerAccount, PerClient *guard.Limiter
	Logger                *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Console is the admin console: New, then Handler.
type Console struct {
	Config
	pages   map[string]*template.Template
	issued  *issuedStore
	handler http.Handler
	csp     string
}

// New checks c and builds the console.
func New(c Config) (*Console, error) {
	var missing []string
	for name, set := range map[string]bool{"Developers": c.Developers != nil, "Catalogue": c.Catalogue != nil,
		"Keys": c.Keys != nil, "Hits": c.Hits != nil, "Admins": c.Admins != nil, "Sessions": c.Sessions != nil,
		"Audit": c.Audit != nil} {
		if !set {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("web: the console needs %s", strings.Join(missing, ", "))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	con := &Console{Config: c, issued: newIssuedStore()}
	if err := con.parseTemplates(); err != nil {
		return nil, err
	}
	img := "'self'"
	if c.Gravatar {
		img += " " + gravatarOrigin
	}
	con.csp = "default-src 'self'; img-src " + img + "; style-src 'self'; script-src 'self'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
	con.handler = con.routes()
	return con, nil
}

// Handler serves the console under Prefix.
func (c *Console) Handler() http.Handler { return c.handler }

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", cacheStatic(http.FileServerFS(static))))

	mux.HandleFunc("GET /admin/signin", c.signInPage)
	mux.HandleFunc("POST /admin/signin", c.signIn)
	mux.HandleFunc("POST /admin/signin/key", c.signInWithKey)

	// Everything else needs a session; POSTs need its CSRF token too.
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, c.authed(h)) }
	page("POST /admin/signout", c.signOut)
	page("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"developers", http.StatusSeeOther)
	})

	page("GET /admin/developers", c.developersPage)
	page("GET /admin/developers/new", c.newDeveloperPage)
	page("POST /admin/developers", c.createDeveloper)
	page("GET /admin/developers/{id}", c.profilePage)
	page("GET /admin/developers/{id}/edit", c.editPage)
	page("POST /admin/developers/{id}/edit", c.saveProfile)
	page("POST /admin/developers/{id}/status", c.setStatus)
	page("GET /admin/developers/{id}/delete", c.deleteDeveloperPage)
	page("POST /admin/developers/{id}/delete", c.deleteDeveloper)

	page("GET /admin/developers/{id}/keys/new", c.newKeyPage)
	page("POST /admin/developers/{id}/keys", c.issueKey)
	page("GET /admin/developers/{id}/keys/{hash}", c.keyPage)
	page("GET /admin/developers/{id}/keys/{hash}/policy", c.changePolicyPage)
	page("POST /admin/developers/{id}/keys/{hash}/policy", c.changePolicy)
	page("POST /admin/developers/{id}/keys/{hash}/reset_quota", c.resetQuota)
	page("GET /admin/developers/{id}/keys/{hash}/revoke", c.revokePage)
	page("POST /admin/developers/{id}/keys/{hash}/revoke", c.revoke)
	page("GET /admin/developers/{id}/oauth/{client}/delete", c.deleteClientPage)
	page("POST /admin/developers/{id}/oauth/{client}/delete", c.deleteClient)
	page("GET /admin/issued/{nonce}", c.issuedPage)

	page("GET /admin/requests", c.requestsPage)
	page("POST /admin/requests/{id}/approve", c.approveRequest)
	page("POST /admin/requests/{id}/reject", c.rejectRequest)

	page("GET /admin/catalogue", c.cataloguePage)
	page("GET /admin/catalogue/new", c.entryPage)
	page("GET /admin/catalogue/edit", c.entryPage)
	page("POST /admin/catalogue", c.saveEntry)
	page("POST /admin/catalogue/remove", c.removeEntry)
	page("GET /admin/configuration", c.configurationPage)
	page("POST /admin/configuration", c.saveConfiguration)

	page("GET /admin/admins", c.adminsPage)
	page("POST /admin/admins", c.addAdmin)
	page("POST /admin/admins/{id}/status", c.setAdminStatus)
	page("GET /admin/admins/{id}/remove", c.removeAdminPage)
	page("POST /admin/admins/{id}/remove", c.removeAdmin)

	page("GET /admin/activity", c.activityPage)

	return c.recoverer(c.headers(c.notFound(mux)))
}

// headers sets the security headers every response carries.
func (c *Console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", c.csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/admin/static/") {
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
func (c *Console) notFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			c.errorPage(w, r, portalstore.Errorf(portalstore.ENOTFOUND, "There is no such page."))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 page.
func (c *Console) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				c.Logger.Error("panic serving console request", "method", r.Method, "route", r.Pattern, "panic", v)
				c.errorPage(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets: the page's own data in Data.
type view struct {
	Title string
	Nav   string // the menu entry to mark current
	Who   string // who is signed in: an email, or "admin key"
	CSRF  string
	Flash string
	Error string
	Data  any
}

// pageFiles lists each page template; each is parsed with the layout.
var pageFiles = []string{"signin", "developers", "developer_new", "profile", "edit", "confirm", "key_new", "key_policy",
	"key", "issued", "requests", "catalogue", "entry", "configuration", "admins", "activity", "error"}

func (c *Console) parseTemplates() error {
	c.pages = map[string]*template.Template{}
	for _, name := range pageFiles {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/chart.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}

// render writes page name with status. The page is rendered into a buffer
// first, so that a template error answers 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	if s := sessionFrom(r); s != nil {
		v.Who, v.CSRF = s.who(), s.csrf
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, v); err != nil {
		c.Logger.Error("rendering a console page", "page", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers err with its status and its caller-safe message. Only
// internal errors are logged, as in the REST API.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	code := portalstore.ErrorCode(err)
	if code == portalstore.EINTERNAL || code == portalstore.EFULL {
		c.Logger.Error("console request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	status := portalstore.HTTPStatus(code)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	c.render(w, r, status, "error", view{Title: http.StatusText(status), Data: portalstore.ErrorMessage(err)})
}

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

// flashes are the messages a redirect may name: the page shows only these,
// never text from the URL.
var flashes = map[string]string{
	"developer-added":   "Developer added.",
	"profile-saved":     "Profile saved.",
	"activated":         "Developer activated.",
	"deactivated":       "Developer deactivated: their keys stop working at once.",
	"developer-deleted": "Developer deleted, with their keys and OAuth clients.",
	"policy-changed":    "Key policy changed.",
	"quota-reset":       "Quota reset.",
	"revoked":           "Key revoked: it stops working at once.",
	"client-deleted":    "OAuth client deleted.",
	"rejected":          "Key request rejected.",
	"entry-saved":       "Catalogue entry saved.",
	"entry-removed":     "Catalogue entry removed.",
	"config-saved":      "Configuration saved.",
	"admin-added":       "Admin added.",
	"admin-disabled":    "Admin disabled: their sessions ended.",
	"admin-enabled":     "Admin enabled.",
	"admin-removed":     "Admin removed.",
	"signed-out":        "You are signed out.",
	"expired":           "Your session has ended. Sign in again.",
}

func flash(r *http.Request) string { return flashes[r.URL.Query().Get("done")] }

// formValue is a form field, trimmed.
func formValue(r *http.Request, name string) string { return strings.TrimSpace(r.PostFormValue(name)) }

// maxFormBytes bounds a form body.
const maxFormBytes = 1 << 20
