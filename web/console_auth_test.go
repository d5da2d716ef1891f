package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
)

// consolePages are every GET page of the console, for the checks that hold
// on all of them; {dev}, {key} and {client} are filled in.
var consolePages = []string{
	"/admin/developers", "/admin/developers?q=ada", "/admin/developers/new", "/admin/developers/{dev}",
	"/admin/developers/{dev}/edit", "/admin/developers/{dev}/delete", "/admin/developers/{dev}/keys/new",
	"/admin/developers/{dev}/keys/{key}", "/admin/developers/{dev}/keys/{key}/policy", "/admin/developers/{dev}/keys/{key}/revoke",
	"/admin/developers/{dev}/oauth/{client}/delete", "/admin/requests", "/admin/catalogue", "/admin/catalogue/new",
	"/admin/catalogue/edit?policy=pol-payments", "/admin/configuration", "/admin/admins", "/admin/activity",
	"/admin/activity?developer=ada@example.com",
}

// everything fills a console with one of each object and returns the page
// paths with their placeholders filled.
func (tc *testConsole) everything() []string {
	tc.t.Helper()
	d := tc.fixture()
	ctx := context.Background()
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}})
	if err != nil {
		tc.t.Fatal(err)
	}
	oa, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-partner"},
		OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}, Fields: map[string]any{"oauth_app_description": "Sync app"}})
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := tc.db.CreateKeyRequest(ctx, &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-gold"},
		Fields: map[string]any{"Use case": "invoicing"}}); err != nil {
		tc.t.Fatal(err)
	}
	if err := tc.db.CreateAdmin(ctx, &keylens.Admin{Email: "grace@example.com", Password: "long-enough-password"}); err != nil {
		tc.t.Fatal(err)
	}
	var out []string
	r := strings.NewReplacer("{dev}", d.ID, "{key}", a.KeyHash, "{client}", oa.OAuthClient.ClientID)
	for _, p := range consolePages {
		out = append(out, r.Replace(p))
	}
	return out
}

func TestEveryPageRendersWithSecurityHeaders(t *testing.T) {
	tc := newTestConsole(t)
	pages := tc.everything()
	b := tc.signedIn()
	for _, path := range append(pages, "/admin/signin") {
		p := b.get(path)
		if p.Status != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", path, p.Status, text(p.Body))
			continue
		}
		h := p.Header
		if csp := h.Get("Content-Security-Policy"); csp != "default-src 'self'; img-src 'self' https://www.gravatar.com; style-src 'self'; "+
			"script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'" {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "same-origin" || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Cache-Control") != "no-store" || h.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("GET %s: headers %v", path, h)
		}
		if strings.Contains(p.Body, "<script>") || strings.Contains(p.Body, " style=") || strings.Contains(p.Body, "<style") ||
			strings.Contains(p.Body, "javascript:") || strings.Contains(strings.ToLower(p.Body), " onclick") {
			t.Errorf("GET %s: inline script or style in the page", path)
		}
		if path != "/admin/signin" && !strings.Contains(p.Body, `<form method="post" action="/admin/signout"`) {
			t.Errorf("GET %s: no sign-out", path)
		}
		// Every form that posts carries the session's CSRF token.
		if n, m := strings.Count(p.Body, `method="post"`), strings.Count(p.Body, `name="csrf"`); n != m {
			t.Errorf("GET %s: %d POST forms, %d CSRF fields", path, n, m)
		}
	}
	for _, asset := range []string{"/admin/static/console.css", "/admin/static/console.js"} {
		p := b.get(asset)
		if p.Status != http.StatusOK || p.Header.Get("Cache-Control") != "public, max-age=300" || p.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: %d %v", asset, p.Status, p.Header)
		}
	}
	if p := b.get("/admin/nowhere"); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "There is no such page.") {
		t.Errorf("unknown page: %d", p.Status)
	}
}

func TestGravatarOffAllowsNoOtherOrigin(t *testing.T) {
	tc := newTestConsole(t, func(c *ConsoleConfig) { c.Gravatar = false })
	d := tc.fixture()
	p := tc.signedIn().get("/admin/developers/" + d.ID)
	want(t, p, http.StatusOK, `<div class="avatar" aria-hidden="true">AL</div>`)
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self';") || strings.Contains(p.Body, "gravatar") {
		t.Errorf("Gravatar off: CSP %q, page mentions gravatar: %t", csp, strings.Contains(p.Body, "gravatar"))
	}
	tc2 := newTestConsole(t)
	d2 := tc2.fixture()
	want(t, tc2.signedIn().get("/admin/developers/"+d2.ID), http.StatusOK,
		`AL<img src="https://www.gravatar.com/avatar/`, `?s=160&amp;d=404" alt=""`)
}

func TestSignIn(t *testing.T) {
	tc := newTestConsole(t)
	ctx := context.Background()
	if err := tc.db.CreateAdmin(ctx, &keylens.Admin{Email: "root@example.com", Password: "long-enough-password"}); err != nil {
		t.Fatal(err)
	}
	off := &keylens.Admin{Email: "off@example.com", Password: "long-enough-password"}
	if err := tc.db.CreateAdmin(ctx, off); err != nil {
		t.Fatal(err)
	}
	if err := tc.db.SetAdminDisabled(ctx, off.ID, true); err != nil {
		t.Fatal(err)
	}

	t.Run("PagesNeedASession", func(t *testing.T) {
		b := tc.browser()
		p := b.get("/admin/developers?q=x")
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/admin/signin?next="+url.QueryEscape("/admin/developers?q=x") {
			t.Errorf("no session: %d → %q", p.Status, p.Header.Get("Location"))
		}
		if p := b.get("/admin/"); p.Header.Get("Location") != "/admin/signin" {
			t.Errorf("GET /admin/ without a session → %q", p.Header.Get("Location"))
		}
	})

	t.Run("AccountThenNext", func(t *testing.T) {
		b := tc.browser()
		b.get("/admin/signin?next=/admin/activity")
		p := b.post("/admin/signin", url.Values{"email": {"ROOT@example.com"}, "password": {"long-enough-password"}, "next": {"/admin/activity"}})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/admin/activity" {
			t.Fatalf("sign-in: %d → %q\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
		}
		want(t, b.follow(p), http.StatusOK, "Signed in as root@example.com")
		if _, ok := b.cookies[signInCookie]; ok {
			t.Error("the sign-in form's cookie outlives the sign-in")
		}
	})

	t.Run("NextNeverLeavesTheConsole", func(t *testing.T) {
		for _, next := range []string{"https://evil.example/", "//evil.example/admin/", "/admin/\\evil", "/api/portal/developers"} {
			b := tc.browser()
			b.get("/admin/signin")
			p := b.post("/admin/signin/key", url.Values{"key": {testAdminKey}, "next": {next}})
			if loc := p.Header.Get("Location"); loc != "/admin/developers" {
				t.Errorf("next %q → %q", next, loc)
			}
		}
	})

	t.Run("WrongPasswordUnknownEmailDisabledAccount", func(t *testing.T) {
		for _, c := range [][2]string{{"root@example.com", "wrong-password-123"}, {"nobody@example.com", "long-enough-password"},
			{"off@example.com", "long-enough-password"}} {
			b := tc.browser()
			b.addr = "198.51.100.1:1" // another client, not to trip the client limit
			b.get("/admin/signin")
			p := b.post("/admin/signin", url.Values{"email": {c[0]}, "password": {c[1]}})
			want(t, p, http.StatusUnauthorized, "Wrong email or password, or the account is disabled.")
			if _, ok := b.cookies[sessionCookie]; ok {
				t.Errorf("%s: a session cookie was set", c[0])
			}
		}
		b := tc.browser()
		b.get("/admin/signin")
		want(t, b.post("/admin/signin/key", url.Values{"key": {testAdminKey + "x"}}), http.StatusUnauthorized, "That is not the admin key.")
	})

	t.Run("CookieFlags", func(t *testing.T) {
		for _, secure := range []bool{false, true} {
			tc := newTestConsole(t, func(c *ConsoleConfig) {
				if secure {
					c.URL = "https://console.example.com" // --public-url https://…
				}
			})
			b := tc.browser()
			b.get("/admin/signin")
			req := httptestRequest("POST", "/admin/signin/key", url.Values{"key": {testAdminKey}, "csrf": {b.csrf}}, b)
			rec := serve(tc, req)
			var ck *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == sessionCookie {
					ck = c
				}
			}
			if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure != secure || ck.Path != "/admin/" ||
				len(ck.Value) != 43 || ck.MaxAge != int(keylens.SessionMaxAge/time.Second) {
				t.Fatalf("secure=%t: session cookie %+v", secure, ck)
			}
			// Only the id's hash is stored.
			if _, err := tc.db.FindSession(context.Background(), ck.Value); err == nil {
				t.Error("the raw session id is stored")
			}
			if _, err := tc.db.FindSession(context.Background(), keylens.SessionHash(ck.Value)); err != nil {
				t.Errorf("the session's hash is not stored: %v", err)
			}
		}
	})

	t.Run("ANewIdAtEverySignIn", func(t *testing.T) {
		b := tc.signedIn()
		first := b.cookies[sessionCookie]
		b.signIn()
		if b.cookies[sessionCookie] == first {
			t.Error("signing in again kept the session id")
		}
		if _, err := tc.db.FindSession(context.Background(), keylens.SessionHash(first)); err == nil {
			t.Error("the replaced session still lives")
		}
	})

	t.Run("SignOut", func(t *testing.T) {
		b := tc.signedIn()
		id := b.cookies[sessionCookie]
		p := b.post("/admin/signout", nil)
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/admin/signin?done=signed-out" {
			t.Fatalf("sign-out: %d %q", p.Status, p.Header.Get("Location"))
		}
		want(t, b.follow(p), http.StatusOK, "You are signed out.")
		// The old cookie, replayed, is worth nothing.
		b.cookies[sessionCookie] = id
		if p := b.get("/admin/developers"); p.Status != http.StatusSeeOther {
			t.Errorf("a signed-out session still opens pages: %d", p.Status)
		}
	})
}

func TestSignInFailuresAreLimited(t *testing.T) {
	tc := newTestConsole(t, func(c *ConsoleConfig) {
		c.SignIn = guard.NewSignIn(guard.Policy{Window: 15 * time.Minute, PairMax: 3, ClientMax: 5})
	})
	if err := tc.db.CreateAdmin(context.Background(), &keylens.Admin{Email: "root@example.com", Password: "long-enough-password"}); err != nil {
		t.Fatal(err)
	}
	b := tc.browser()
	b.get("/admin/signin")
	for range 3 {
		want(t, b.post("/admin/signin", url.Values{"email": {"root@example.com"}, "password": {"guess-guess-guess"}}), http.StatusUnauthorized)
	}
	// Blocked before any password is checked: the right one is refused too.
	p := b.post("/admin/signin", url.Values{"email": {"root@example.com"}, "password": {"long-enough-password"}})
	want(t, p, http.StatusTooManyRequests, "Too many failed sign-ins. Try again in 15 minutes.")
	// The window's rest, on the real clock (guard's tests check the exact
	// value on their own): not bounded from below by how long this took.
	if ra, err := strconv.Atoi(p.Header.Get("Retry-After")); err != nil || ra <= 0 || ra > 900 {
		t.Errorf("Retry-After %q, want the window's rest, at most 900", p.Header.Get("Retry-After"))
	}
	// Another client's failures refuse nobody else: the right password
	// from a client without failures signs in.
	admin := tc.browser()
	admin.addr = "198.51.100.20:4000"
	admin.get("/admin/signin")
	want(t, admin.post("/admin/signin", url.Values{"email": {"root@example.com"}, "password": {"long-enough-password"}}), http.StatusSeeOther)
	// Another account from the same client still may, until the client's
	// own limit: 2 more failures make 5.
	for range 2 {
		want(t, b.post("/admin/signin/key", url.Values{"key": {"not-the-key-at-all"}}), http.StatusUnauthorized)
	}
	want(t, b.post("/admin/signin/key", url.Values{"key": {testAdminKey}}), http.StatusTooManyRequests)
	// Another client signs in with the admin key.
	other := tc.browser()
	other.addr = "203.0.113.9:4000"
	other.signIn()
}

// TestAdminKeySignInCannotBeLockedByOthers: however many clients send
// wrong admin keys, a client that has not signs in with the right one.
func TestAdminKeySignInCannotBeLockedByOthers(t *testing.T) {
	tc := newTestConsole(t, func(c *ConsoleConfig) {
		c.SignIn = guard.NewSignIn(guard.Policy{Window: 15 * time.Minute, PairMax: 3, ClientMax: 5,
			AccountDelayAfter: 3, BaseDelay: time.Minute, MaxDelay: time.Minute, AccountMax: 10})
	})
	for i := range 10 {
		b := tc.browser()
		b.addr = fmt.Sprintf("203.0.113.%d:4000", i)
		b.get("/admin/signin")
		for range 3 {
			want(t, b.post("/admin/signin/key", url.Values{"key": {"not-the-key-at-all"}}), http.StatusUnauthorized)
		}
		want(t, b.post("/admin/signin/key", url.Values{"key": {testAdminKey}}), http.StatusTooManyRequests)
	}
	admin := tc.browser()
	admin.addr = "198.51.100.20:4000"
	admin.signIn()
}

// TestSimultaneousSignInsCheckAtMostTheLimit: 40 wrong passwords posted
// at once from one client, to the console and the portal, check at most
// the limit's worth; the rest are 429 before any password is checked.
func TestSimultaneousSignInsCheckAtMostTheLimit(t *testing.T) {
	tp := newTestPortal(t)
	tp.signUp("ada@example.com", "first-pass")
	if err := tp.db.CreateAdmin(context.Background(), &keylens.Admin{Email: "root@example.com", Password: "long-enough-password"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b          *browser
		path, user string
	}{
		{tp.browser(), "/admin/signin", "root@example.com"},
		{tp.visitor(), "/login", "ada@example.com"},
	} {
		c.b.addr = "203.0.113.50:4000"
		c.b.get(c.path)
		form := url.Values{"email": {c.user}, "password": {"guess-guess-guess"}, "csrf": {c.b.csrf}}
		n := concurrentPosts(c.b, c.path, form, 40)
		if n[http.StatusUnauthorized] > 5 || n[http.StatusUnauthorized]+n[http.StatusTooManyRequests] != 40 {
			t.Errorf("%s: 40 simultaneous wrong passwords: %v, want at most 5 answered 401 (checked), the rest 429", c.path, n)
		}
	}
}

func TestExpiredSessionGoesToSignIn(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps []time.Duration // requests after each wait
		live  bool
	}{
		{"Idle29Minutes", []time.Duration{29 * time.Minute}, true},
		{"Idle30Minutes", []time.Duration{30 * time.Minute}, false},
		{"BusyFor11Hours50", repeat(25*time.Minute, 28), true}, // 11h40m of activity
		{"BusyFor12Hours", repeat(25*time.Minute, 29), false},  // 12h05m: past the absolute limit
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := newTestConsole(t)
			b := tc.signedIn()
			var p page
			for _, d := range c.steps {
				tc.advance(d)
				p = b.get("/admin/developers")
				if p.Status != http.StatusOK {
					break
				}
			}
			if c.live {
				want(t, p, http.StatusOK, "Developers")
				return
			}
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/admin/signin?done=expired&next=%2Fadmin%2Fdevelopers" {
				t.Fatalf("expired session: %d → %q", p.Status, p.Header.Get("Location"))
			}
			want(t, b.follow(p), http.StatusOK, "Your session has ended. Sign in again.")
			// A POST of an expired session changes nothing.
			b2 := tc.signedIn()
			tc.advance(keylens.SessionIdleTimeout)
			p = b2.post("/admin/developers", url.Values{"email": {"late@example.com"}})
			if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/admin/signin?done=expired") {
				t.Errorf("POST of an expired session: %d → %q", p.Status, p.Header.Get("Location"))
			}
			if _, err := tc.db.FindDeveloperByEmail(context.Background(), "late@example.com"); err == nil {
				t.Error("an expired session's POST created a developer")
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestAnotherAdminKeyEndsAdminKeySessions(t *testing.T) {
	tc := newTestConsole(t)
	b := tc.signedIn()
	c2, err := NewConsole(ConsoleConfig{
		SiteConfig: SiteConfig{Developers: tc.db, Catalogue: tc.db, Keys: tc.db, Hits: tc.db, Sessions: tc.db, Now: tc.clock},
		Admins:     tc.db, Audit: tc.db, AdminKeyHash: [32]byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	tc.h = c2.Handler() // keylens restarted with another --admin-key
	if p := b.get("/admin/developers"); p.Status != http.StatusSeeOther {
		t.Errorf("a session of the old admin key still works: %d", p.Status)
	}
}

func TestCSRF(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	alice, mallory := tc.signedIn(), tc.signedIn()
	if alice.csrf == mallory.csrf || alice.csrf == "" {
		t.Fatal("two sessions share a CSRF token")
	}
	forms := []struct {
		path string
		form url.Values
	}{
		{"/admin/developers", url.Values{"email": {"forged@example.com"}}},
		{"/admin/developers/" + d.ID + "/status", url.Values{"status": {"inactive"}}},
		{"/admin/developers/" + d.ID + "/delete", nil},
		{"/admin/admins", url.Values{"email": {"forged@example.com"}, "password": {"long-enough-password"}, "password_again": {"long-enough-password"}}},
		{"/admin/configuration", url.Values{"require_key_approval": {"on"}}},
		{"/admin/signout", nil},
	}
	audit := func() int {
		_, n, err := tc.db.FindAudit(context.Background(), keylens.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := audit()
	for _, f := range forms {
		for name, token := range map[string]string{"none": "", "another session's": mallory.csrf, "garbage": "x"} {
			form := url.Values{}
			for k, v := range f.form {
				form[k] = v
			}
			form.Set("csrf", token)
			if token == "" {
				form.Del("csrf")
				form["csrf"] = nil
			}
			p := alice.do("POST", f.path, form)
			want(t, p, http.StatusForbidden, "Nothing was changed.")
			_ = name
		}
	}
	// A cross-site POST with the right token is refused too.
	req := httptestRequest("POST", "/admin/developers", url.Values{"email": {"cross@example.com"}, "csrf": {alice.csrf}}, alice)
	req.Header.Set("Origin", "https://evil.example")
	if rec := serve(tc, req); rec.Code != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d", rec.Code)
	}
	if n := audit(); n != before {
		t.Errorf("refused forms changed something: %d audit entries, were %d", n, before)
	}
	got, _ := tc.db.FindDeveloperByID(context.Background(), d.ID)
	if got == nil || got.Inactive {
		t.Errorf("developer after forged forms: %+v", got)
	}
	if p := alice.get("/admin/developers"); p.Status != http.StatusOK {
		t.Error("a forged sign-out signed alice out")
	}
	// The sign-in form has a token of its own.
	b := tc.browser()
	b.get("/admin/signin")
	want(t, b.post("/admin/signin/key", url.Values{"key": {testAdminKey}, "csrf": {"forged"}}), http.StatusForbidden)
	fresh := tc.browser()
	want(t, fresh.do("POST", "/admin/signin/key", url.Values{"key": {testAdminKey}, "csrf": {"forged"}}), http.StatusForbidden)
}

// Behind a proxy that rewrites Host, a form's Origin names the public host.
func TestOriginBehindAProxy(t *testing.T) {
	tc := newTestConsole(t, func(c *ConsoleConfig) { c.URL = "http://keylens.example.com" })
	b := tc.signedIn()
	for origin, status := range map[string]int{"https://keylens.example.com": http.StatusSeeOther, "https://evil.example": http.StatusForbidden,
		"http://console.test": http.StatusSeeOther} {
		req := httptestRequest("POST", "/admin/developers", url.Values{"email": {"o" + strconv.Itoa(status) + "-" + strings.Split(origin, "//")[1] + "@example.com"}, "csrf": {b.csrf}}, b)
		req.Header.Set("Origin", origin)
		if rec := serve(tc, req); rec.Code != status {
			t.Errorf("Origin %s: %d, want %d", origin, rec.Code, status)
		}
	}
	req := httptestRequest("POST", "/admin/developers", url.Values{"email": {"fetch@example.com"}, "csrf": {b.csrf}}, b)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if rec := serve(tc, req); rec.Code != http.StatusForbidden {
		t.Errorf("Sec-Fetch-Site cross-site without Origin: %d", rec.Code)
	}
}
