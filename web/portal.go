package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/mailer"
)

// The developer portal: what a developer does for themselves (the
// self-service part of the Tyk Classic Portal's developer screens), on its own listener because it faces the
// internet and the admin API and console must not. It shares the console's
// layout, stylesheet, sessions, CSRF tokens and sign-in limits (the kit,
// site_*.go); its sessions are developers' and every page reads only the
// signed-in developer's own data: another developer's key, request, OAuth
// client or usage is "not found", whatever the URL or form says.

// PortalConfig is what the developer portal serves and how: the
// SiteConfig both apps take (its URL is required: the links in emails
// start with it, never with a request's Host, which a client chooses), and
// the portal's own.
type PortalConfig struct {
	SiteConfig
	Accounts keylens.AccountService
	// Mailer sends password reset emails.
	Mailer mailer.Sender
	// CentralJWT says JWTs are verified against an identity provider's
	// keys (keylens serve --jwt-*): a jwt request then needs no material.
	CentralJWT bool
	// Revoker revokes a client's OAuth tokens for its developer: the
	// admin API's (keylens's own tokens, or the gateway's with
	// --tyk-gateway).
	Revoker keylens.TokenRevoker
}

// Portal is the developer portal: NewPortal, then Handler.
type Portal struct {
	PortalConfig
	*site
	issued  *issuedStore
	handler http.Handler
	mails   sync.WaitGroup // emails being sent
}

// The portal's cookies: named apart from the console's, since browsers
// share cookies between ports of one host.
const (
	portalSessionCookie = "keylens_portal_session"
	portalSignInCookie  = "keylens_portal_form"
)

// portalPages lists the portal's page templates.
var portalPages = []string{"portal_catalogue", "portal_signin", "portal_signup", "portal_reset", "portal_reset_set",
	"portal_dashboard", "portal_request", "portal_issued", "portal_key", "portal_profile", "portal_password",
	"portal_oauth", "portal_client", "error"}

// NewPortal checks c and builds the portal.
func NewPortal(c PortalConfig) (*Portal, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("web: the developer portal's URL %q: want http(s)://host[:port] (served at the root)", c.URL)
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	s := &site{name: "keylens developer portal", prefix: "/", home: "/dashboard",
		signInPath: "/login", signInLabel: "Log in", signInPage: "portal_signin", signOut: "/logout",
		sessionCookie: portalSessionCookie, signInCookie: portalSignInCookie,
		menu: []menuItem{{"dashboard", "Dashboard", "/dashboard"}, {"catalogue", "Catalogue", "/catalogue"},
			{"oauth", "OAuth clients", "/oauth-clients"}, {"profile", "Edit profile", "/profile"}},
		publicMenu: []menuItem{{"catalogue", "Catalogue", "/catalogue"}, {"login", "Log in", "/login"}, {"signup", "Sign up", "/signup"}},
		accept:     (*keylens.Session).IsDeveloper,
		via:        keylens.ViaPortal, flashes: portalFlashes}
	own := map[string]bool{"Accounts": c.Accounts != nil, "Mailer": c.Mailer != nil, "Revoker": c.Revoker != nil}
	if err := c.build("developer portal", own, s, portalPages, false); err != nil {
		return nil, err
	}
	p := &Portal{PortalConfig: c, site: s, issued: newIssuedStore()}
	p.handler = p.routes()
	return p, nil
}

// Handler serves the portal at the root of its listener.
func (p *Portal) Handler() http.Handler { return p.handler }

// Wait waits for the emails being sent (shutdown, tests).
func (p *Portal) Wait() { p.mails.Wait() }

func (p *Portal) routes() http.Handler {
	mux := http.NewServeMux()
	open := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, p.optional(h)) }
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, p.authed(h)) }

	open("GET /{$}", p.cataloguePage)
	open("GET /catalogue", p.cataloguePage)
	open("GET /signup", p.signUpPage)
	mux.HandleFunc("POST /signup", p.signUp)
	open("GET /login", p.logInPage)
	mux.HandleFunc("POST /login", p.logIn)
	open("GET /reset", p.resetPage)
	mux.HandleFunc("POST /reset", p.requestReset)
	open("GET /reset/{token}", p.resetSetPage)
	mux.HandleFunc("POST /reset/{token}", p.resetSet)

	page("POST /logout", p.signOutHandler)
	page("GET /dashboard", p.dashboardPage)
	page("GET /keys/new", p.requestPage)
	page("POST /keys", p.requestKey)
	page("GET /keys/{hash}", p.keyPage)
	page("POST /keys/{hash}/rotate", p.rotateKey)
	page("GET /issued/{nonce}", p.issuedPage)
	page("GET /profile", p.profilePage)
	page("POST /profile", p.saveProfile)
	page("GET /password", p.passwordPage)
	page("POST /password", p.changePassword)
	page("GET /oauth-clients", p.oauthPage)
	page("GET /oauth-clients/{id}", p.clientPage)
	page("POST /oauth-clients/{id}/revoke", p.revokeToken)
	page("POST /oauth-clients/{id}/revoke_all", p.revokeAllTokens)
	page("POST /oauth-clients/{id}/rotate", p.rotateSecret)
	return p.handle(mux)
}

// portalFlashes are the portal's messages a redirect may name.
var portalFlashes = map[string]string{
	"welcome":          "Welcome! Your account is ready: request a key from the catalogue.",
	"requested":        "Key requested: an admin approves it, and you will see the key here once, on your next visit after that.",
	"profile-saved":    "Profile saved.",
	"password-changed": "Password changed. Your other sessions were signed out.",
	"password-reset":   "Your password is reset and every session of yours was signed out. Log in with the new password.",
	"signed-out":       "You are logged out.",
	"expired":          "Your session has ended. Log in again.",
	"token-revoked":    "The token is revoked (a token this client never had changes nothing).",
	"tokens-revoked":   "Every token of this client is revoked. It can still get new ones with its secret.",
}

// me is the signed-in developer, read afresh: ENOTFOUND if they are gone.
func (p *Portal) me(ctx context.Context, r *http.Request) (*keylens.Developer, error) {
	return p.Developers.FindDeveloperByID(ctx, sessionFrom(r).DeveloperID)
}

// notMine is the answer for anything that is not the developer's own: the
// same as for what does not exist.
var notMine = keylens.Errorf(keylens.ENOTFOUND, "Not found")
