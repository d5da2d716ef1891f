package web

import (
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
)

// SiteConfig is what both apps take from their caller: the store's
// services they both read, the sessions they both keep, where browsers
// reach them, the sign-in limits they share, the logger and the clock.
// ConsoleConfig and PortalConfig embed it and add their own.
type SiteConfig struct {
	Developers keylens.DeveloperService
	Catalogue  keylens.CatalogueService
	Keys       keylens.KeyService
	Hits       keylens.HitService
	// Sessions keeps both apps' sessions, told apart by whose they are.
	Sessions keylens.SessionService
	// URL is where browsers reach the app's listener, when a proxy in
	// front may change the scheme or the Host header, e.g.
	// https://developers.example.com behind a TLS proxy: https marks
	// cookies Secure, and a form POST's Origin may name its host as well
	// as the request's Host. The console may go without (--public-url);
	// the portal needs it for the links in its emails.
	URL string
	// SignIn is the sign-in flow, which refuses guessing
	// (guard.Policy). Both apps and the REST API's verify_credentials
	// share it: guesses count once, wherever they are made. nil limits
	// nothing.
	SignIn *guard.SignIn
	// Logger is where errors go; nowhere when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxRotationGrace is the longest grace period a key rotation may
	// give the replaced key (--max-rotation-grace): the forms offer
	// none longer. 0 offers only stopping the old key at once.
	MaxRotationGrace time.Duration
}

// build checks c, with the app's own services besides (own: each one's
// name and whether it is set), completes it (Logger, Now), and gives s,
// the site of the app called app in errors, what c says: sessions,
// cookies, limits, logger, clock, and its pages parsed.
func (c *SiteConfig) build(app string, own map[string]bool, s *site, pages []string, gravatar bool) error {
	set := map[string]bool{"Developers": c.Developers != nil, "Catalogue": c.Catalogue != nil,
		"Keys": c.Keys != nil, "Hits": c.Hits != nil, "Sessions": c.Sessions != nil}
	maps.Copy(set, own)
	var missing []string
	for name, ok := range set {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("web: the %s needs %s", app, strings.Join(missing, ", "))
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("web: the %s's URL %q: want an http(s) URL", app, c.URL)
		}
		s.secure, s.publicHost = u.Scheme == "https", u.Host
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	s.sessions, s.logger, s.now = c.Sessions, c.Logger, c.Now
	s.signIn = c.SignIn
	return s.parse(pages, gravatar)
}

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
	// signInLabel names signing in as the site does: the portal says
	// "Log in" on every page, the console "Sign in".
	signInLabel string
	signInPage  string // the template of the sign-in form
	signOut     string // the sign-out form's action
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

	// From the SiteConfig (build):
	sessions   keylens.SessionService
	secure     bool
	publicHost string
	logger     *slog.Logger
	now        func() time.Time
	// signIn is the sign-in flow both apps and the REST API share.
	signIn *guard.SignIn

	pages map[string]*template.Template
	csp   string
}

// menuItem is an entry of the site's menu; Name is what view.Nav marks.
type menuItem struct{ Name, Label, Path string }
