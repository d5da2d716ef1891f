package web

import (
	"html/template"
	"log/slog"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
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
