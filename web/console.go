package web

import (
	"crypto/sha256"
	"net/http"

	"github.com/keylens/keylens"
)

// Prefix is where the console is served.
const Prefix = "/admin/"

// The console's cookies. Both are HttpOnly, SameSite=Strict, scoped to
// the console, and Secure when the console is reached over https.
const (
	sessionCookie = "keylens_session"
	// signInCookie carries the sign-in form's CSRF token before there is
	// a session (a double-submit token): a sign-in cannot be forged
	// either, so nobody can sign a browser in to their own account.
	signInCookie = "keylens_signin"
)

// ConsoleConfig is what the console serves and how: the SiteConfig both
// apps take, and the console's own.
type ConsoleConfig struct {
	SiteConfig
	Admins keylens.AdminService
	Audit  keylens.AuditService
	// AdminKeyHash is the SHA-256 of the admin key, which signs in too.
	AdminKeyHash [sha256.Size]byte
	// Gravatar shows developers' Gravatar images over their initials; the
	// Content-Security-Policy then allows images from www.gravatar.com.
	Gravatar bool
	// CentralJWT says JWTs are verified against an identity provider's
	// keys (keylens serve --jwt-*): a jwt request is then approved without
	// material. Without, approving one that has none asks for it.
	CentralJWT bool
}

// Console is the admin console: NewConsole, then Handler.
type Console struct {
	ConsoleConfig
	*site
	issued  *issuedStore
	handler http.Handler
}

// NewConsole checks c and builds the console.
func NewConsole(c ConsoleConfig) (*Console, error) {
	fingerprint := keylens.AdminKeyFingerprint(c.AdminKeyHash)
	s := &site{name: "keylens console", prefix: Prefix, home: Prefix + "developers",
		signInPath: Prefix + "signin", signInLabel: "Sign in", signInPage: "signin", signOut: Prefix + "signout",
		sessionCookie: sessionCookie, signInCookie: signInCookie,
		menu: []menuItem{{"developers", "Developers", Prefix + "developers"}, {"requests", "Key requests", Prefix + "requests"},
			{"catalogue", "Catalogue", Prefix + "catalogue"}, {"configuration", "Configuration", Prefix + "configuration"},
			{"admins", "Admins", Prefix + "admins"}, {"activity", "Activity", Prefix + "activity"}},
		// An admin's session, or the admin key's while keylens runs with
		// that key: never a developer's.
		accept: func(s *keylens.Session) bool {
			return !s.IsDeveloper() && (s.AdminID != "" || s.AdminKey == fingerprint)
		},
		via: keylens.ViaConsole, flashes: consoleFlashes}
	if err := c.build("console", map[string]bool{"Admins": c.Admins != nil, "Audit": c.Audit != nil}, s, pageFiles, c.Gravatar); err != nil {
		return nil, err
	}
	con := &Console{ConsoleConfig: c, site: s, issued: newIssuedStore()}
	con.handler = con.routes()
	return con, nil
}

// Handler serves the console under Prefix.
func (c *Console) Handler() http.Handler { return c.handler }

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /admin/signin", c.signInPage)
	mux.HandleFunc("POST /admin/signin", c.signIn)
	mux.HandleFunc("POST /admin/signin/key", c.signInWithKey)

	// Everything else needs a session; POSTs need its CSRF token too.
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, c.authed(h)) }
	page("POST /admin/signout", c.signOutHandler)
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
	page("GET /admin/developers/{id}/keys/{hash}/rotate", c.rotatePage)
	page("POST /admin/developers/{id}/keys/{hash}/rotate", c.rotate)
	page("GET /admin/developers/{id}/keys/{hash}/revoke", c.revokePage)
	page("POST /admin/developers/{id}/keys/{hash}/revoke", c.revoke)
	page("GET /admin/developers/{id}/oauth/{client}/delete", c.deleteClientPage)
	page("POST /admin/developers/{id}/oauth/{client}/delete", c.deleteClient)
	page("GET /admin/issued/{nonce}", c.issuedPage)

	page("GET /admin/requests", c.requestsPage)
	page("GET /admin/requests/{id}/approve", c.approvePage)
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

	return c.handle(mux)
}

// pageFiles lists each page template; each is parsed with the layout.
var pageFiles = []string{"signin", "developers", "developer_new", "profile", "edit", "confirm", "key_new", "key_policy", "key_rotate",
	"key", "issued", "requests", "request_approve", "catalogue", "entry", "configuration", "admins", "activity", "error"}

// consoleFlashes are the messages a redirect may name: the page shows only these,
// never text from the URL.
var consoleFlashes = map[string]string{
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
