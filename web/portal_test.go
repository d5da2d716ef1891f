package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/mailer"
	"github.com/keylens/keylens/mailer/smtptest"
)

// testPortal is the developer portal over the console's store, clock and
// sign-in limiters, with a real SMTP server receiving its emails.
type testPortal struct {
	*testConsole
	p    *Portal
	smtp *smtptest.Server
}

func newTestPortal(t *testing.T) *testPortal { return newTestPortalB(t) }

func newTestPortalB(t testing.TB) *testPortal {
	t.Helper()
	tc := newTestConsole(t)
	srv := smtptest.Start(t, nil)
	m, err := mailer.NewSMTP("smtp://"+srv.Addr, "portal@example.com")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPortal(PortalConfig{
		SiteConfig: SiteConfig{Developers: tc.db, Catalogue: tc.db, Keys: tc.db, Hits: tc.db, Sessions: tc.db,
			URL: "http://portal.test", SignIn: tc.c.SignIn, Now: tc.clock,
			MaxRotationGrace: keylens.DefaultMaxRotationGrace,
			Logger:           slog.New(slog.NewTextHandler(tWriter{t}, nil))},
		Accounts: tc.db, Revoker: keylens.LocalRevoker{Store: tc.db}, Mailer: m})
	if err != nil {
		t.Fatal(err)
	}
	tp := &testPortal{testConsole: tc, p: p, smtp: srv}
	ctx := context.Background()
	if err := tc.db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
		{Name: "Payments", ShortDescription: "Take payments", PolicyID: "pol-payments", APIID: "payments", AuthType: keylens.AuthToken, Show: true},
		{Name: "Reports", PolicyID: "pol-reports", APIID: "reports", AuthType: keylens.AuthBasic, Show: true},
		{Name: "Partner", PolicyID: "pol-partner", APIID: "partner", AuthType: keylens.AuthOAuth, Show: true},
		{Name: "Events", PolicyID: "pol-events", APIID: "events", AuthType: keylens.AuthJWT, Show: true},
		{Name: "Internal Gold", PolicyID: "pol-gold", APIID: "payments", AuthType: keylens.AuthToken},
	}}); err != nil {
		t.Fatal(err)
	}
	tp.config(false)
	return tp
}

func (tp *testPortal) config(approval bool) {
	tp.t.Helper()
	if err := tp.db.PutPortalConfig(context.Background(), &keylens.PortalConfig{SignupFields: []string{"Company"},
		KeyRequestFields: []string{"Use case"}, RequireKeyApproval: approval}); err != nil {
		tp.t.Fatal(err)
	}
}

// visitor is a browser on the portal.
func (tp *testPortal) visitor() *browser {
	return &browser{tc: tp.testConsole, h: tp.p.Handler(), origin: "http://portal.test", cookies: map[string]string{}, addr: "198.51.100.7:4444"}
}

// signUp signs a new developer up in a new browser, signed in.
func (tp *testPortal) signUp(email, password string) *browser {
	tp.t.Helper()
	b := tp.visitor()
	b.get("/signup")
	p := b.post("/signup", url.Values{"email": {email}, "password": {password}, "field_name": {"Company"}, "field_value": {"Acme"}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/dashboard?done=welcome" {
		tp.t.Fatalf("sign-up: %d %s\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	b.get("/dashboard")
	return b
}

func (tp *testPortal) developer(email string) *keylens.Developer {
	tp.t.Helper()
	d, err := tp.db.FindDeveloperByEmail(context.Background(), email)
	if err != nil {
		tp.t.Fatal(err)
	}
	return d
}

var rawKeyOutput = regexp.MustCompile(`<output id="raw-key[^"]*">([^<]+)</output>`)

// requestKey requests a key for policy and returns the issued page.
func (b *browser) requestKey(policy string, form url.Values) page {
	b.tc.t.Helper()
	b.get("/keys/new?policy=" + policy)
	if form == nil {
		form = url.Values{}
	}
	form.Set("policy", policy)
	return b.post("/keys", form)
}

func httptestServe(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPortalEveryPageRendersWithSecurityHeaders(t *testing.T) {
	tp := newTestPortal(t)
	anon := tp.visitor()
	for _, path := range []string{"/", "/catalogue", "/signup", "/login", "/reset"} {
		p := anon.get(path)
		want(t, p, http.StatusOK)
		if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "gravatar") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if p.Header.Get("X-Frame-Options") != "DENY" || p.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", path, p.Header)
		}
	}
	want(t, anon.get("/static/console.css"), http.StatusOK)
	want(t, anon.get("/no/such/page"), http.StatusNotFound, "There is no such page.")

	b := tp.signUp("ada@example.com", "first-pass")
	b.requestKey("pol-partner", url.Values{"redirect_uri": {"https://app.example.com/cb"}})
	d := tp.developer("ada@example.com")
	if _, err := tp.db.IssueKey(context.Background(), d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}}); err != nil {
		t.Fatal(err)
	}
	keys, _ := tp.db.FindDeveloperKeys(context.Background(), d.ID)
	keyHash := keys[0].Hash
	client := ""
	for _, cs := range tp.developer("ada@example.com").OAuthClients {
		client = cs[0].ClientID
	}
	for _, path := range []string{"/dashboard", "/catalogue", "/keys/new?policy=pol-payments", "/keys/new?policy=pol-events",
		"/keys/new?policy=pol-partner", "/keys/" + keyHash, "/profile", "/password", "/oauth-clients", "/oauth-clients/" + client} {
		p := b.get(path)
		want(t, p, http.StatusOK, "Signed in as ada@example.com", `name="csrf"`)
	}
	// Anonymous visitors are sent to log in, and come back after.
	p := anon.get("/keys/" + keyHash)
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?next="+url.QueryEscape("/keys/"+keyHash) {
		t.Errorf("anonymous key page: %d %s", p.Status, p.Header.Get("Location"))
	}
}

func TestPortalSignUpLogInLogOut(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.visitor()
	want(t, b.get("/signup"), http.StatusOK, "Your password must be a minimum of 6 characters", ">Company<")
	for _, c := range []struct {
		form   url.Values
		status int
		msg    string
	}{
		{url.Values{"email": {"ada@example.com"}, "password": {"five5"}}, 400, "minimum of 6 characters"},
		{url.Values{"email": {"not an email"}, "password": {"first-pass"}}, 400, "not valid"},
		{url.Values{"email": {"ada@example.com"}, "password": {"$2a$10$hlG1ujAHWUpnM37k.l1RhO6RrxkCpXki2yrGhufnDs1IBiUo4Kzqy"}}, 400, "minimum of 6 characters"},
	} {
		want(t, b.post("/signup", c.form), c.status, c.msg)
	}
	if _, n, _ := tp.db.FindDevelopers(context.Background(), keylens.DeveloperFilter{}); n != 0 {
		t.Fatalf("refused sign-ups stored %d developers", n)
	}
	// Only the configuration's sign-up fields are taken.
	b.get("/signup")
	p := b.post("/signup", url.Values{"email": {"ada@example.com"}, "password": {"first-pass"},
		"field_name": {"Company", "Role"}, "field_value": {"Acme", "admin"}})
	want(t, b.follow(p), http.StatusOK, "Welcome!", "Signed in as ada@example.com")
	d := tp.developer("ada@example.com")
	if d.Fields["Company"] != "Acme" || len(d.Fields) != 1 {
		t.Errorf("signed up with fields %v", d.Fields)
	}
	if entries, _, _ := tp.db.FindAudit(context.Background(), keylens.AuditFilter{DeveloperID: d.ID}); len(entries) == 0 ||
		entries[0].Via != keylens.ViaPortal || entries[0].Actor != "ada@example.com" {
		t.Errorf("audit of the sign-up: %+v", entries)
	}

	other := tp.visitor()
	other.get("/signup")
	want(t, other.post("/signup", url.Values{"email": {"ADA@example.com"}, "password": {"other-pass"}}), http.StatusConflict, "already exists")

	// Log out: the session is gone from the store, not just the cookie.
	old := b.cookies[portalSessionCookie]
	p = b.post("/logout", nil)
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?done=signed-out" {
		t.Fatalf("logout: %d %s", p.Status, p.Header.Get("Location"))
	}
	if _, err := tp.db.FindSession(context.Background(), keylens.SessionHash(old)); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("the session outlived logout: %v", err)
	}
	b.cookies[portalSessionCookie] = old
	if p := b.get("/dashboard"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/login") {
		t.Errorf("a logged-out session's cookie still works: %d", p.Status)
	}

	b = tp.visitor()
	b.get("/login")
	want(t, b.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"wrong-pass"}}), http.StatusUnauthorized, "Wrong email or password")
	p = b.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"first-pass"}, "next": {"/profile"}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/profile" {
		t.Fatalf("login: %d %s", p.Status, p.Header.Get("Location"))
	}
	// A destination on another site is dropped.
	b2 := tp.visitor()
	b2.get("/login")
	p = b2.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"first-pass"}, "next": {"//evil.example/x"}})
	if p.Header.Get("Location") != "/dashboard" {
		t.Errorf("next=//evil.example went to %s", p.Header.Get("Location"))
	}
	// An inactive developer cannot log in, and their sessions end.
	off := true
	if _, err := tp.db.PatchDeveloper(context.Background(), d.ID, keylens.DeveloperPatch{Inactive: &off}); err != nil {
		t.Fatal(err)
	}
	if p := b2.get("/dashboard"); p.Status != http.StatusSeeOther {
		t.Errorf("an inactive developer's session still works: %d", p.Status)
	}
	b3 := tp.visitor()
	b3.get("/login")
	want(t, b3.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"first-pass"}}), http.StatusUnauthorized)
}

func TestPortalLogInFailuresAreLimitedWithTheRESTAPIs(t *testing.T) {
	tp := newTestPortal(t)
	tp.signUp("ada@example.com", "first-pass")
	// verify_credentials counts under the same subject: 5 failures there,
	// from this client, block the portal's login too.
	for range 5 {
		tp.c.SignIn.Attempt("account:ada@example.com", "client:198.51.100.7", func() (bool, error) { return false, nil })
	}
	b := tp.visitor()
	b.get("/login")
	p := b.post("/login", url.Values{"email": {"Ada@Example.com"}, "password": {"first-pass"}})
	want(t, p, http.StatusTooManyRequests, "Too many failed sign-ins")
	if p.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestPortalCatalogueShowsOnlyPublishedEntries(t *testing.T) {
	tp := newTestPortal(t)
	p := tp.visitor().get("/catalogue")
	want(t, p, http.StatusOK, "Payments", "Take payments", "Reports", "Partner", "Events", "Sign up")
	if strings.Contains(p.Body, "Internal Gold") || strings.Contains(p.Body, "/keys/new") {
		t.Errorf("anonymous catalogue shows a hidden entry or a request link:\n%s", text(p.Body))
	}
	b := tp.signUp("ada@example.com", "first-pass")
	want(t, b.get("/catalogue"), http.StatusOK, `/keys/new?policy=pol-payments`)
	// A hidden entry cannot be requested, by link or by form.
	want(t, b.get("/keys/new?policy=pol-gold"), http.StatusNotFound)
	want(t, b.post("/keys", url.Values{"policy": {"pol-gold"}}), http.StatusNotFound)
	if keys, _ := tp.db.FindDeveloperKeys(context.Background(), tp.developer("ada@example.com").ID); len(keys) != 0 {
		t.Errorf("a hidden policy was issued: %+v", keys)
	}
}

func TestPortalRequestKeyIssuedAtOnceShownOnce(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.signUp("ada@example.com", "first-pass")
	want(t, b.get("/keys/new?policy=pol-payments"), http.StatusOK, "Use case", "issued at once")
	p := b.requestKey("pol-payments", url.Values{"field_name": {"Use case", "by_user"}, "field_value": {"billing", "x"}})
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/issued/") {
		t.Fatalf("request: %d %s\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	issued := p.Header.Get("Location")
	p = b.get(issued)
	want(t, p, http.StatusOK, "Copy it now", `data-copy="raw-key"`)
	m := rawKeyOutput.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no key on the issued page:\n%s", text(p.Body))
	}
	k, err := tp.db.FindKey(context.Background(), keylens.HashKey(m[1]))
	if err != nil || k.DeveloperID != tp.developer("ada@example.com").ID || k.Fields["Use case"] != "billing" || len(k.Fields) != 1 {
		t.Fatalf("the shown key is stored as %+v, %v", k, err)
	}
	want(t, b.get(issued), http.StatusGone, "shown once")
	p = b.get("/dashboard")
	want(t, p, http.StatusOK, k.Hash[:8], "Payments")
	if strings.Contains(p.Body, m[1]) {
		t.Error("the dashboard shows the raw key")
	}
}

func TestPortalRequestKeyWithApprovalShowsItOnceOnTheNextVisit(t *testing.T) {
	tp := newTestPortal(t)
	tp.config(true)
	b := tp.signUp("ada@example.com", "first-pass")
	want(t, b.get("/keys/new?policy=pol-reports"), http.StatusOK, "An admin approves")
	p := b.requestKey("pol-reports", nil)
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/dashboard?done=requested" {
		t.Fatalf("request: %d %s", p.Status, p.Header.Get("Location"))
	}
	p = b.follow(p)
	want(t, p, http.StatusOK, "Key requested", "Pending key requests", "Reports")
	if strings.Contains(p.Body, "Approved since your last visit") {
		t.Error("a pending request shows credentials")
	}
	pending := false
	reqs, _, _ := tp.db.FindKeyRequests(context.Background(), keylens.KeyRequestFilter{Approved: &pending})
	if len(reqs) != 1 {
		t.Fatalf("%d pending requests", len(reqs))
	}
	// The admin approves in the console, and sees the credentials there.
	admin := tp.signedIn()
	admin.get("/admin/requests")
	want(t, admin.follow(admin.post("/admin/requests/"+reqs[0].ID+"/approve", nil)), http.StatusOK, "Basic credentials")

	p = b.get("/dashboard")
	want(t, p, http.StatusOK, "Approved since your last visit", "Copy these now", "Basic credentials", `data-copy="password-1"`)
	if strings.Contains(p.Body, "Pending key requests") {
		t.Error("the approved request is still pending")
	}
	user := regexp.MustCompile(`<output id="username-1">([^<]+)</output>`).FindStringSubmatch(p.Body)
	pass := regexp.MustCompile(`<output id="password-1">([^<]+)</output>`).FindStringSubmatch(p.Body)
	if user == nil || pass == nil {
		t.Fatalf("no basic credentials:\n%s", text(p.Body))
	}
	k, err := tp.db.FindKeyByBasicUsername(context.Background(), user[1])
	if err != nil || !keylens.CheckPassword(k.BasicPasswordHash, pass[1]) {
		t.Fatalf("the shown credentials do not match the stored key: %+v, %v", k, err)
	}
	if p := b.get("/dashboard"); strings.Contains(p.Body, "Approved since your last visit") || strings.Contains(p.Body, pass[1]) {
		t.Error("the credentials were shown twice")
	}
}

func TestPortalJWTAndOAuthRequests(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.signUp("ada@example.com", "first-pass")
	dev := tp.developer("ada@example.com")
	want(t, b.get("/keys/new?policy=pol-events"), http.StatusOK, "HMAC secret or PEM public key")
	want(t, b.requestKey("pol-events", url.Values{"jwt_secret": {"too-short"}}), http.StatusBadRequest, "at least 32 bytes", "too-short")
	want(t, b.requestKey("pol-partner", url.Values{"redirect_uri": {"javascript:alert(1)"}}), http.StatusBadRequest, "redirect_uri")
	if keys, _ := tp.db.FindDeveloperKeys(context.Background(), dev.ID); len(keys) != 0 {
		t.Fatalf("refused requests stored keys: %+v", keys)
	}
	p := b.follow(b.requestKey("pol-events", url.Values{"jwt_secret": {"an-hmac-secret-of-at-least-32-bytes!"}}))
	want(t, p, http.StatusOK, "JWT key id")
	p = b.follow(b.requestKey("pol-partner", url.Values{"redirect_uri": {"https://app.example.com/cb"}, "app_description": {"My app"}}))
	want(t, p, http.StatusOK, "OAuth client", "Client secret", "https://app.example.com/cb")
	dev = tp.developer("ada@example.com")
	cl := dev.OAuthClients["pol-partner"]
	if len(cl) != 1 || !strings.Contains(p.Body, cl[0].Secret) || cl[0].AppDescription != "My app" {
		t.Fatalf("clients %+v", cl)
	}
	p = b.get("/oauth-clients")
	want(t, p, http.StatusOK, cl[0].ClientID, "Partner", "My app")
	if strings.Contains(p.Body, cl[0].Secret) {
		t.Error("the client list shows the secret")
	}

	// Without central JWT a jwt request needs material; with it, none:
	// the key id is what the identity provider puts in its tokens.
	want(t, b.requestKey("pol-events", url.Values{"jwt_secret": {""}}), http.StatusBadRequest, "jwt_secret")
	tp.p.CentralJWT, tp.db.CentralJWT = true, true
	want(t, b.get("/keys/new?policy=pol-events"), http.StatusOK, "Leave it empty")
	want(t, b.follow(b.requestKey("pol-events", url.Values{"jwt_secret": {""}})), http.StatusOK, "JWT key id")
}

// Every page and action reads only the signed-in developer's own data:
// another's key, usage, OAuth client or issued credentials are not found,
// whatever the URL or form says.
func TestPortalOwnership(t *testing.T) {
	tp := newTestPortal(t)
	ada := tp.signUp("ada@example.com", "first-pass")
	bob := tp.signUp("bob@example.com", "second-pass")
	issued := ada.requestKey("pol-payments", nil).Header.Get("Location")
	ada.requestKey("pol-partner", url.Values{"redirect_uri": {"https://ada.example.com/cb"}})
	adaDev := tp.developer("ada@example.com")
	keys, _ := tp.db.FindDeveloperKeys(context.Background(), adaDev.ID)
	if len(keys) != 1 || len(adaDev.OAuthClients["pol-partner"]) != 1 {
		t.Fatalf("ada's keys %+v, clients %+v", keys, adaDev.OAuthClients)
	}
	hash, client := keys[0].Hash, adaDev.OAuthClients["pol-partner"][0].ClientID
	for _, path := range []string{"/keys/" + hash, "/keys/" + hash + "?from=2020-01-01&to=2020-12-31", "/oauth-clients/" + client} {
		p := bob.get(path)
		want(t, p, http.StatusNotFound)
		if strings.Contains(p.Body, hash) || strings.Contains(p.Body, client) {
			t.Errorf("%s shows ada's data to bob", path)
		}
		want(t, ada.get(path), http.StatusOK)
	}
	want(t, bob.get(issued), http.StatusGone)
	want(t, ada.get(issued), http.StatusOK, "Copy it now")
	for _, path := range []string{"/dashboard", "/oauth-clients"} {
		if p := bob.get(path); strings.Contains(p.Body, hash[:8]) || strings.Contains(p.Body, client) {
			t.Errorf("bob's %s shows ada's key or client", path)
		}
	}
	// A form naming ada (by_user, id) still files bob's request.
	bob.get("/keys/new?policy=pol-payments")
	bob.post("/keys", url.Values{"policy": {"pol-payments"}, "by_user": {adaDev.ID}, "id": {adaDev.ID}})
	if keys, _ := tp.db.FindDeveloperKeys(context.Background(), adaDev.ID); len(keys) != 1 {
		t.Errorf("bob's request gave ada a key: %+v", keys)
	}
	// And a profile form naming ada changes bob's profile only.
	bob.get("/profile")
	want(t, bob.post("/profile", url.Values{"id": {adaDev.ID}, "email": {"ada@example.com"}, "field_name": {"Name"}, "field_value": {"Bob"}}), http.StatusSeeOther)
	if d := tp.developer("ada@example.com"); d.Fields["Name"] != "" {
		t.Errorf("bob renamed ada: %v", d.Fields)
	}
	if d := tp.developer("bob@example.com"); d.Fields["Name"] != "Bob" || d.Email != "bob@example.com" {
		t.Errorf("bob's profile: %+v", d)
	}
}

func TestPortalCSRF(t *testing.T) {
	tp := newTestPortal(t)
	ada := tp.signUp("ada@example.com", "first-pass")
	bob := tp.signUp("bob@example.com", "second-pass")
	ada.get("/profile")
	form := url.Values{"field_name": {"Name"}, "field_value": {"Mallory"}}
	for name, f := range map[string]url.Values{
		"no token":             {"field_name": {"Name"}, "field_value": {"Mallory"}, "csrf": {""}},
		"another session's":    {"field_name": {"Name"}, "field_value": {"Mallory"}, "csrf": {bob.csrf}},
		"the pre-session form": {"field_name": {"Name"}, "field_value": {"Mallory"}, "csrf": {"x" + ada.csrf[1:]}},
	} {
		want(t, ada.post("/profile", f), http.StatusForbidden, "Nothing was changed")
		_ = name
	}
	req := httptestRequest("POST", "/profile", url.Values{"field_name": {"Name"}, "field_value": {"Mallory"}, "csrf": {ada.csrf}}, ada)
	req.Header.Set("Origin", "https://evil.example")
	if rec := httptestServe(tp.p.Handler(), req); rec.Code != http.StatusForbidden {
		t.Errorf("a cross-site POST: %d", rec.Code)
	}
	if d := tp.developer("ada@example.com"); d.Fields["Name"] != "" {
		t.Fatalf("a refused form changed the profile: %v", d.Fields)
	}
	want(t, ada.post("/profile", form), http.StatusSeeOther)

	// Forms shown before sign-in carry a token in a cookie: a login,
	// sign-up or reset posted without it is refused.
	anon := tp.visitor()
	for _, path := range []string{"/login", "/signup", "/reset"} {
		want(t, anon.do("POST", path, url.Values{"email": {"ada@example.com"}, "password": {"first-pass"}}), http.StatusForbidden, "Form refused")
	}
}

func TestPortalEscapesWhatDevelopersAndAdminsWrite(t *testing.T) {
	tp := newTestPortal(t)
	ctx := context.Background()
	cat, _ := tp.db.Catalogue(ctx)
	cat.APIs[0].Name, cat.APIs[0].ShortDescription = `<img src=x onerror=alert(1)>`, `"><script>alert(2)</script>`
	cat.APIs[0].Documentation = "javascript:alert(3)"
	if err := tp.db.PutCatalogue(ctx, cat); err != nil {
		t.Fatal(err)
	}
	b := tp.signUp("ada@example.com", "first-pass")
	b.get("/profile")
	b.post("/profile", url.Values{"field_name": {"Name"}, "field_value": {`<script>alert(4)</script>`}})
	for _, path := range []string{"/catalogue", "/dashboard", "/profile", "/keys/new?policy=pol-payments"} {
		p := b.get(path)
		for _, bad := range []string{"<script>alert", "<img src=x", `href="javascript:`} {
			if strings.Contains(p.Body, bad) {
				t.Errorf("%s carries %q unescaped", path, bad)
			}
		}
	}
	want(t, b.get("/dashboard"), http.StatusOK, "&lt;script&gt;alert(4)&lt;/script&gt;")
}

func TestPortalAndConsoleSessionsAreApart(t *testing.T) {
	tp := newTestPortal(t)
	dev := tp.signUp("ada@example.com", "first-pass")
	admin := tp.signedIn()
	// A developer's session id under the console's cookie name (and the
	// admin's under the portal's) is refused.
	stolen := tp.browser()
	stolen.cookies[sessionCookie] = dev.cookies[portalSessionCookie]
	if p := stolen.get("/admin/developers"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/admin/signin") {
		t.Errorf("a developer session opens the console: %d %s", p.Status, p.Header.Get("Location"))
	}
	other := tp.visitor()
	other.cookies[portalSessionCookie] = admin.cookies[sessionCookie]
	if p := other.get("/dashboard"); p.Status != http.StatusSeeOther {
		t.Errorf("an admin session opens the portal: %d", p.Status)
	}
	// Both still work where they belong.
	want(t, dev.get("/dashboard"), http.StatusOK)
	want(t, admin.get("/admin/developers"), http.StatusOK)

	// Idle for the timeout, the portal session ends.
	tp.advance(keylens.SessionIdleTimeout)
	p := dev.get("/dashboard")
	if p.Status != http.StatusSeeOther || !strings.Contains(p.Header.Get("Location"), "done=expired") {
		t.Errorf("an idle session: %d %s", p.Status, p.Header.Get("Location"))
	}
	if _, ok := dev.cookies[portalSessionCookie]; ok {
		t.Error("the expired session's cookie was kept")
	}
}

func TestPortalSessionCookie(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.visitor()
	b.get("/login")
	tp.signUp("ada@example.com", "first-pass")
	req := httptestRequest("POST", "/login", url.Values{"email": {"ada@example.com"}, "password": {"first-pass"}, "csrf": {b.csrf}}, b)
	req.Header.Set("Origin", "http://portal.test")
	rec := httptestServe(tp.p.Handler(), req)
	var ck *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == portalSessionCookie {
			ck = c
		}
	}
	if rec.Code != http.StatusSeeOther || ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Secure {
		t.Fatalf("login: %d, cookie %+v", rec.Code, ck)
	}
	if _, err := tp.db.FindSession(context.Background(), ck.Value); err == nil {
		t.Error("the store holds the session id itself, not its hash")
	}
	// Over https (a TLS proxy in front), cookies are Secure.
	p, err := NewPortal(PortalConfig{
		SiteConfig: SiteConfig{Developers: tp.db, Catalogue: tp.db, Keys: tp.db, Hits: tp.db, Sessions: tp.db,
			URL: "https://developers.example.com"},
		Accounts: tp.db, Revoker: keylens.LocalRevoker{Store: tp.db}, Mailer: tp.p.Mailer})
	if err != nil {
		t.Fatal(err)
	}
	rec = httptestServe(p.Handler(), httptestRequest("GET", "/login", nil, b))
	if cs := rec.Result().Cookies(); len(cs) == 0 || !cs[0].Secure {
		t.Errorf("https portal cookies: %+v", cs)
	}
}

func TestPortalProfile(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.signUp("ada@example.com", "first-pass")
	d := tp.developer("ada@example.com")
	// A field an admin set, which the profile does not offer, survives.
	fields := map[string]string{"Company": "Acme", "Team": "Core"}
	if _, err := tp.db.PatchDeveloper(context.Background(), d.ID, keylens.DeveloperPatch{Fields: fields}); err != nil {
		t.Fatal(err)
	}
	want(t, b.get("/profile"), http.StatusOK, "Name", "Telephone", "Country location", "Company", `value="Acme"`)
	p := b.post("/profile", url.Values{"field_name": {"Name", "Telephone", "Country location", "Company", "Team", "Tier"},
		"field_value": {"Ada Lovelace", "+44 20 7946 0000", "United Kingdom", "", "Hacked", "gold"}})
	want(t, b.follow(p), http.StatusOK, "Profile saved", `value="Ada Lovelace"`, `value="United Kingdom"`)
	got := tp.developer("ada@example.com").Fields
	if got["Name"] != "Ada Lovelace" || got["Telephone"] != "+44 20 7946 0000" || got["Country location"] != "United Kingdom" ||
		got["Team"] != "Core" || got["Tier"] != "" || got["Company"] != "" {
		t.Errorf("fields after saving: %v", got)
	}
}

func TestPortalChangePassword(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.signUp("ada@example.com", "first-pass")
	other := tp.visitor()
	other.get("/login")
	other.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"first-pass"}})
	want(t, other.get("/dashboard"), http.StatusOK)

	b.get("/password")
	want(t, b.post("/password", url.Values{"current": {"wrong-pass"}, "password": {"second-pass"}}), http.StatusUnauthorized, "current password")
	want(t, b.post("/password", url.Values{"current": {"first-pass"}, "password": {"short"}}), http.StatusBadRequest, "minimum of 6")
	want(t, b.post("/password", url.Values{"current": {"first-pass"}, "password": {"first-pass"}}), http.StatusBadRequest, "not used recently")
	want(t, b.follow(b.post("/password", url.Values{"current": {"first-pass"}, "password": {"second-pass"}})), http.StatusOK, "Password changed")
	want(t, b.get("/dashboard"), http.StatusOK)
	if p := other.get("/dashboard"); p.Status != http.StatusSeeOther {
		t.Errorf("the other session survived the change: %d", p.Status)
	}
	b.get("/password")
	want(t, b.post("/password", url.Values{"current": {"second-pass"}, "password": {"first-pass"}}), http.StatusBadRequest, "not used recently")
	if _, err := tp.db.VerifyCredentials(context.Background(), "ada@example.com", "second-pass"); err != nil {
		t.Errorf("the new password: %v", err)
	}
}

var resetLink = regexp.MustCompile(`http://portal\.test(/reset/[A-Za-z0-9_-]{43})`)

func TestPortalPasswordResetByEmail(t *testing.T) {
	tp := newTestPortal(t)
	signedIn := tp.signUp("ada@example.com", "first-pass")
	b := tp.visitor()
	want(t, b.get("/login"), http.StatusOK, `href="/reset"`, "Request password reset")
	b.get("/reset")
	unknown := b.post("/reset", url.Values{"email": {"nobody@example.com"}})
	b.get("/reset")
	known := b.post("/reset", url.Values{"email": {"ada@example.com"}})
	want(t, known, http.StatusOK, "a password reset email is on its way")
	// The same answer, whether or not the address is a developer's.
	if strings.ReplaceAll(unknown.Body, "nobody@example.com", "X") != strings.ReplaceAll(known.Body, "ada@example.com", "X") || unknown.Status != known.Status {
		t.Error("the answers for an unknown and a known email differ")
	}
	tp.p.Wait()
	mails := tp.smtp.Mails()
	if len(mails) != 1 || mails[0].To[0] != "ada@example.com" {
		t.Fatalf("emails: %+v", mails)
	}
	m := resetLink.FindStringSubmatch(mails[0].Body)
	if m == nil {
		t.Fatalf("no link in %q", mails[0].Body)
	}
	want(t, b.get(m[1]), http.StatusOK, "Set a new password")
	want(t, b.post(m[1], url.Values{"password": {"short"}}), http.StatusBadRequest, "minimum of 6")
	want(t, b.post(m[1], url.Values{"password": {"first-pass"}}), http.StatusBadRequest, "not used recently")
	p := b.post(m[1], url.Values{"password": {"reset-pass"}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/login?done=password-reset" {
		t.Fatalf("reset: %d %s\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	want(t, b.follow(p), http.StatusOK, "Your password is reset")
	if p := signedIn.get("/dashboard"); p.Status != http.StatusSeeOther {
		t.Errorf("a session survived the reset: %d", p.Status)
	}
	want(t, b.get(m[1]), http.StatusNotFound, "not valid")
	b.get("/login")
	want(t, b.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"first-pass"}}), http.StatusUnauthorized)
	if p := b.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"reset-pass"}}); p.Status != http.StatusSeeOther {
		t.Errorf("login with the new password: %d", p.Status)
	}
	// An hour later a link no longer works.
	b.get("/reset")
	b.post("/reset", url.Values{"email": {"ada@example.com"}})
	tp.p.Wait()
	m2 := resetLink.FindStringSubmatch(tp.smtp.Wait(t, 2, 5*time.Second).Body)
	tp.db.Now = func() time.Time { return time.Now().Add(keylens.PasswordResetTTL) }
	want(t, b.get(m2[1]), http.StatusNotFound)
}

func TestPortalResetEmailsAreLimitedPerAddress(t *testing.T) {
	tp := newTestPortal(t)
	tp.signUp("ada@example.com", "first-pass")
	b := tp.visitor()
	for range 8 {
		b.get("/reset")
		want(t, b.post("/reset", url.Values{"email": {"ada@example.com"}}), http.StatusOK, "on its way")
	}
	tp.p.Wait()
	if n := len(tp.smtp.Mails()); n != 5 {
		t.Errorf("%d emails for 8 requests, want the limiter's 5", n)
	}
}

// tWriter logs to the test.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// A developer revokes their own OAuth client's tokens, one or all (the
// Tyk Classic Portal API's two revocations), with their session and CSRF token; another
// developer's client is not found, and nothing of it is revoked.
func TestPortalRevokesOAuthTokens(t *testing.T) {
	tp := newTestPortal(t)
	ctx := context.Background()
	ada := tp.signUp("ada@example.com", "first-pass")
	bob := tp.signUp("bob@example.com", "second-pass")
	ada.requestKey("pol-partner", url.Values{"redirect_uri": {"https://ada.example.com/cb"}})
	client := tp.developer("ada@example.com").OAuthClients["pol-partner"][0]
	cred := keylens.ClientCredentials{ID: client.ClientID, Secret: client.Secret}
	issue := func() (token, hash string) {
		token, hash = keylens.NewAccessToken()
		if _, err := tp.db.IssueToken(ctx, cred, hash, time.Hour); err != nil {
			t.Fatal(err)
		}
		return token, hash
	}
	live := func(hash string) bool {
		_, err := tp.db.ResolveToken(ctx, hash)
		return err == nil
	}
	one, oneHash := issue()
	_, twoHash := issue()
	_, threeHash := issue()
	path := "/oauth-clients/" + client.ClientID

	// Not bob's client, whatever he sends; and no form without the token.
	bob.get("/oauth-clients")
	want(t, bob.post(path+"/revoke", url.Values{"token": {one}}), http.StatusNotFound)
	want(t, bob.post(path+"/revoke_all", nil), http.StatusNotFound)
	ada.get(path)
	want(t, ada.post(path+"/revoke", url.Values{"token": {one}, "csrf": {"forged"}}), http.StatusForbidden)
	want(t, ada.post(path+"/revoke", url.Values{"token": {"  "}}), http.StatusBadRequest, "Paste the access token")
	if !live(oneHash) || !live(twoHash) || !live(threeHash) {
		t.Fatal("a refused revocation revoked a token")
	}

	p := ada.follow(ada.post(path+"/revoke", url.Values{"token": {one}}))
	want(t, p, http.StatusOK, "The token is revoked")
	if live(oneHash) || !live(twoHash) {
		t.Fatalf("after revoking one token: one %v, two %v", live(oneHash), live(twoHash))
	}
	p = ada.follow(ada.post(path+"/revoke_all", nil))
	want(t, p, http.StatusOK, "Every token of this client is revoked")
	if live(twoHash) || live(threeHash) {
		t.Fatal("revoke all left a token live")
	}
}

// TestPortalRotatesAKey: a developer rotates their key from its page: the
// new key is shown once with the old one's end, both are listed, the old
// one says when it stops, and it cannot be rotated again; another
// developer's key and a grace the form never offered are refused.
func TestPortalRotatesAKey(t *testing.T) {
	tp := newTestPortal(t)
	ada := tp.signUp("ada@example.com", "first-pass")
	bob := tp.signUp("bob@example.com", "second-pass")
	ada.get(ada.requestKey("pol-payments", nil).Header.Get("Location"))
	keys, _ := tp.db.FindDeveloperKeys(context.Background(), tp.developer("ada@example.com").ID)
	if len(keys) != 1 {
		t.Fatalf("keys %+v", keys)
	}
	old := keys[0].Hash
	p := ada.get("/keys/" + old)
	want(t, p, http.StatusOK, "Rotate", `<option value="24h0m0s" selected>1 day</option>`, `<option value="720h0m0s">30 days</option>`)

	want(t, ada.post("/keys/"+old+"/rotate", url.Values{"grace": {"5s"}}), http.StatusBadRequest, "Choose how long")
	bob.get("/dashboard")
	want(t, bob.post("/keys/"+old+"/rotate", url.Values{"grace": {"1h0m0s"}}), http.StatusNotFound)
	if keys, _ := tp.db.FindDeveloperKeys(context.Background(), tp.developer("ada@example.com").ID); len(keys) != 1 {
		t.Fatalf("refused rotations changed the keys: %+v", keys)
	}

	p = ada.post("/keys/"+old+"/rotate", url.Values{"grace": {"24h0m0s"}})
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/issued/") {
		t.Fatalf("rotate: %d %s\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	issued := p.Header.Get("Location")
	p = ada.get(issued)
	want(t, p, http.StatusOK, "Copy it now", "It replaces key", old[:8], "keeps working until")
	m := rawKeyOutput.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no key on the issued page:\n%s", text(p.Body))
	}
	newHash := keylens.HashKey(m[1])
	if c, err := tp.db.ResolveKey(context.Background(), newHash); err != nil || c.Owner.Email != "ada@example.com" {
		t.Fatalf("the new key: %+v, %v", c, err)
	}
	want(t, ada.get(issued), http.StatusGone)
	p = ada.get("/dashboard")
	want(t, p, http.StatusOK, old[:8], newHash[:8], "stops working in 24 hours")
	p = ada.get("/keys/" + old)
	want(t, p, http.StatusOK, "Stops working in 24 hours", "replaced by key")
	if strings.Contains(p.Body, `action="/keys/`+old+`/rotate"`) {
		t.Error("a key in its grace offers rotation")
	}
	want(t, ada.get("/keys/"+newHash), http.StatusOK, "Replaces", old[:8], "which stops working in 24 hours")
	want(t, ada.post("/keys/"+old+"/rotate", url.Values{"grace": {"1h0m0s"}}), http.StatusConflict, "already replaced")
}

func TestUntilText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "now", 0: "now", 10 * time.Second: "less than a minute", 50 * time.Second: "1 minute",
		90*time.Minute - time.Second: "1 hour", 24*time.Hour - time.Millisecond: "24 hours", 30 * 24 * time.Hour: "30 days",
		48*time.Hour - time.Second: "2 days", 5 * time.Minute: "5 minutes",
	} {
		if got := untilText(d); got != want {
			t.Errorf("untilText(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestPortalRotatesAnOAuthSecret: a developer rotates their client's
// secret from its page: the new secret is shown once, both get tokens
// during the grace; another developer's client is not found.
func TestPortalRotatesAnOAuthSecret(t *testing.T) {
	tp := newTestPortal(t)
	ctx := context.Background()
	ada := tp.signUp("ada@example.com", "first-pass")
	bob := tp.signUp("bob@example.com", "second-pass")
	ada.requestKey("pol-partner", url.Values{"redirect_uri": {"https://ada.example.com/cb"}})
	client := tp.developer("ada@example.com").OAuthClients["pol-partner"][0]
	path := "/oauth-clients/" + client.ClientID
	bob.get("/oauth-clients")
	want(t, bob.post(path+"/rotate", url.Values{"grace": {"1h0m0s"}}), http.StatusNotFound)
	want(t, ada.get(path), http.StatusOK, "Rotate the secret", `action="`+path+`/rotate"`)
	p := ada.post(path+"/rotate", url.Values{"grace": {"1h0m0s"}})
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/issued/") {
		t.Fatalf("rotate: %d %s\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	p = ada.get(p.Header.Get("Location"))
	want(t, p, http.StatusOK, "Client secret", "old secret keeps getting tokens until")
	newSecret := tp.developer("ada@example.com").OAuthClients["pol-partner"][0].Secret
	if newSecret == client.Secret || !strings.Contains(p.Body, newSecret) {
		t.Fatalf("the page does not show the new secret")
	}
	for _, secret := range []string{client.Secret, newSecret} {
		_, hash := keylens.NewAccessToken()
		if _, err := tp.db.IssueToken(ctx, keylens.ClientCredentials{ID: client.ClientID, Secret: secret}, hash, time.Hour); err != nil {
			t.Errorf("a token during the grace: %v", err)
		}
	}
	want(t, ada.post(path+"/rotate", url.Values{"grace": {"1h0m0s"}}), http.StatusConflict, "in its grace period")
}
