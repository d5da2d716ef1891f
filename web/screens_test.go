package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/keylens/keylens"
)

// TestActivityShowsIDsThatDiffer: key requests filed in the same second
// have object ids whose first 8 characters (the time) are alike; Activity
// shows them whole.
func TestActivityShowsIDsThatDiffer(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	var ids []string
	for range 2 {
		r := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-payments"}}
		if err := tc.db.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if ids[0][:8] != ids[1][:8] {
		t.Logf("the two ids were made in different seconds: %v", ids)
	}
	b := tc.signedIn()
	want(t, b.get("/admin/activity"), http.StatusOK, "<code>"+ids[0]+"</code>", "<code>"+ids[1]+"</code>")
	// Key hashes stay short: they differ from their first character on.
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}})
	if err != nil {
		t.Fatal(err)
	}
	want(t, b.get("/admin/developers/"+d.ID), http.StatusOK, "<code>"+a.KeyHash[:8]+"…</code>")
}

// TestKeyMessagesShowInTheirSection: Change Policy, Reset quota and Revoke
// come back to the profile's #keys, and deleting an OAuth client to
// #oauth: the message is in that section, where the window is.
func TestKeyMessagesShowInTheirSection(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-partner"},
		OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	base := "/admin/developers/" + d.ID + "/keys/" + a.KeyHash
	inSection := func(p page, section, message string) {
		t.Helper()
		want(t, p, http.StatusOK, message)
		start := strings.Index(p.Body, `<section aria-labelledby="`+section+`">`)
		end := start + strings.Index(p.Body[start:], "</section>")
		if at := strings.Index(p.Body, message); start < 0 || at < start || at > end {
			t.Errorf("%q is not in the %s section", message, section)
		}
		if strings.Count(p.Body, message) != 1 {
			t.Errorf("%q shows %d times", message, strings.Count(p.Body, message))
		}
	}
	b.get(base + "/policy")
	inSection(b.follow(b.post(base+"/policy", url.Values{"policy": {"pol-gold"}})), "keys", "Key policy changed.")
	inSection(b.follow(b.post(base+"/reset_quota", nil)), "keys", "Quota reset.")
	b.get(base + "/revoke")
	inSection(b.follow(b.post(base+"/revoke", nil)), "keys", "Key revoked")
	client := "/admin/developers/" + d.ID + "/oauth/" + c.OAuthClient.ClientID + "/delete"
	b.get(client)
	inSection(b.follow(b.post(client, nil)), "oauth", "OAuth client deleted.")
	// Messages of the page as a whole stay at its top.
	p := b.follow(b.post("/admin/developers/"+d.ID+"/status", url.Values{"status": {"inactive"}}))
	if at := strings.Index(p.Body, "Developer deactivated"); at < 0 || at > strings.Index(p.Body, `<section aria-labelledby="overview">`) {
		t.Error("the deactivation message is not at the top of the page")
	}
}

// TestApprovedRequestOfARevokedKey: Key requests → Approved says a key was
// revoked rather than link to a page that is gone.
func TestApprovedRequestOfARevokedKey(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	var hashes []string
	for range 2 {
		r := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-payments"}}
		if err := tc.db.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		a, err := tc.db.ApproveKeyRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, a.KeyHash)
	}
	if err := tc.db.RevokeKey(ctx, d.ID, hashes[0]); err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	p := b.get("/admin/requests")
	want(t, p, http.StatusOK, "2 approved", "(revoked)", `href="/admin/developers/`+d.ID+`/keys/`+hashes[1]+`"`)
	if strings.Contains(p.Body, `/keys/`+hashes[0]+`"`) {
		t.Error("the revoked key is still linked")
	}
	if strings.Count(p.Body, "(revoked)") != 1 {
		t.Error("the live key is marked revoked too")
	}
}

// TestJWTRequestWithoutMaterial: a jwt request filed without a secret (as
// custom portals file them) is approved, without central JWT, by giving
// the material on the approval page, under the API's rules; with central
// JWT, Approve approves it at once.
func TestJWTRequestWithoutMaterial(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	r := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-events"}}
	if err := tc.db.CreateKeyRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	approve := "/admin/requests/" + r.ID + "/approve"
	p := b.get("/admin/requests")
	want(t, p, http.StatusOK, `<a class="button" href="`+approve+`">Approve…`, "no JWT material: approving asks for it")
	if strings.Contains(p.Body, `action="`+approve+`"`) {
		t.Error("the list still offers an Approve that cannot succeed")
	}
	want(t, b.get(approve), http.StatusOK, "names no signing material", `<textarea id="jwt_secret" name="jwt_secret"`, "Ask the developer")
	want(t, b.post(approve, url.Values{"jwt_secret": {""}}), http.StatusBadRequest, "needs jwt_secret", `<textarea id="jwt_secret"`)
	want(t, b.post(approve, url.Values{"jwt_secret": {"too-short"}}), http.StatusBadRequest, "at least 32 bytes", ">too-short</textarea>")
	want(t, b.post(approve, url.Values{"jwt_secret": {strings.Repeat("a", 40)}}), http.StatusBadRequest, "one byte repeated")
	want(t, b.post(approve, url.Values{"jwt_secret": {"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----"}}), http.StatusBadRequest)
	if got, _ := tc.db.FindKeyRequestByID(ctx, r.ID); got.Approved || got.JWTSecret != "" {
		t.Fatalf("refused material changed the request: %+v", got)
	}
	secret := "an-hmac-secret-of-at-least-32-bytes!"
	p = b.post(approve, url.Values{"jwt_secret": {secret}})
	if !issuedLink.MatchString(p.Header.Get("Location")) {
		t.Fatalf("approve with a secret: %d → %q\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	kid := regexp.MustCompile(`<output id="raw-key">([^<]+)</output>`).FindStringSubmatch(b.follow(p).Body)[1]
	cred, err := tc.db.ResolveKey(ctx, keylens.KeyHashOf(kid))
	if err != nil || cred.Key.JWTSecret != secret || cred.Key.RequestID != r.ID {
		t.Fatalf("the approved key %+v, %v", cred, err)
	}

	// With central JWT the request needs no material: a plain Approve.
	central := newTestConsole(t, func(c *ConsoleConfig) { c.CentralJWT = true })
	cd := central.fixture()
	r2 := &keylens.KeyRequest{ByUser: cd.ID, ApplyPolicies: []string{"pol-events"}}
	if err := central.db.CreateKeyRequest(ctx, r2); err != nil {
		t.Fatal(err)
	}
	central.db.CentralJWT = true
	cb := central.signedIn()
	want(t, cb.get("/admin/requests"), http.StatusOK, `<form method="post" action="/admin/requests/`+r2.ID+`/approve">`)
	if p := cb.post("/admin/requests/"+r2.ID+"/approve", nil); !issuedLink.MatchString(p.Header.Get("Location")) {
		t.Fatalf("approve with central JWT: %d\n%s", p.Status, text(p.Body))
	}
}

// TestPortalSaysWhyAJWTRequestWaits: a jwt request another portal filed
// without material waits for it, and the developer's dashboard says so.
func TestPortalSaysWhyAJWTRequestWaits(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.signUp("ada@example.com", "first-pass")
	dev := tp.developer("ada@example.com")
	ctx := context.Background()
	for _, pol := range []string{"pol-events", "pol-payments"} {
		if err := tp.db.CreateKeyRequest(ctx, &keylens.KeyRequest{ByUser: dev.ID, ApplyPolicies: []string{pol}}); err != nil {
			t.Fatal(err)
		}
	}
	p := b.get("/dashboard")
	want(t, p, http.StatusOK, "Your JWT signing material: the request names none", "An admin's approval")
	if strings.Count(p.Body, "Your JWT signing material") != 1 {
		t.Error("the payments request is said to wait for JWT material too")
	}
	tp.p.CentralJWT = true // the identity provider's tokens name the key: nothing is missing
	if p := b.get("/dashboard"); strings.Contains(p.Body, "Your JWT signing material") {
		t.Error("with central JWT a request without material is said to lack it")
	}
}

// TestPortalOAuthRequestAsksUseCaseOnce: the configuration's "Use case"
// field is the OAuth client's use case too; the form asks it once.
func TestPortalOAuthRequestAsksUseCaseOnce(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.signUp("ada@example.com", "first-pass")
	p := b.get("/keys/new?policy=pol-partner")
	want(t, p, http.StatusOK, "Redirect URI")
	if n := strings.Count(p.Body, ">Use case</label>"); n != 1 {
		t.Errorf("the OAuth form asks for the use case %d times", n)
	}
	b.follow(b.requestKey("pol-partner", url.Values{"redirect_uri": {"https://app.example.com/cb"},
		"field_name": {"Use case"}, "field_value": {"Ledger sync"}}))
	cl := tp.developer("ada@example.com").OAuthClients["pol-partner"]
	if len(cl) != 1 || cl[0].UseCase != "Ledger sync" {
		t.Fatalf("the client's use case: %+v", cl)
	}
	// Without such a field the form asks for the client's own.
	if err := tp.db.PutPortalConfig(context.Background(), &keylens.PortalConfig{}); err != nil {
		t.Fatal(err)
	}
	want(t, b.get("/keys/new?policy=pol-partner"), http.StatusOK, `<label for="use_case">Use case</label>`)
}

// TestPortalSaysLogIn: pages that send a visitor to sign in say "Log in",
// as the rest of the portal does, and the console "Sign in".
func TestPortalSaysLogIn(t *testing.T) {
	tp := newTestPortal(t)
	b := tp.visitor()
	p := b.get("/reset/" + strings.Repeat("ab", 32)) // a reset link that is not valid
	want(t, p, http.StatusNotFound, `<a href="/login">Log in</a>`)
	if strings.Contains(p.Body, "Sign in") {
		t.Error(`the portal says "Sign in"`)
	}
	want(t, tp.browser().get("/admin/signin/nowhere"), http.StatusNotFound, `<a href="/admin/signin">Sign in</a>`)
}

// TestFavicon: pages name an icon, and /favicon.ico is answered without a
// session (a 401 there is an error on every page).
func TestFavicon(t *testing.T) {
	tp := newTestPortal(t)
	p := tp.visitor().get("/favicon.ico")
	if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(p.Body, "<svg") {
		t.Errorf("portal /favicon.ico: %d %s", p.Status, p.Header.Get("Content-Type"))
	}
	want(t, tp.visitor().get("/login"), http.StatusOK, `<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">`)
	want(t, tp.signedIn().get("/admin/developers"), http.StatusOK, `<link rel="icon" href="/admin/static/favicon.svg" type="image/svg+xml">`)
	if p := tp.browser().get("/admin/static/favicon.svg"); p.Status != http.StatusOK {
		t.Errorf("console favicon.svg: %d", p.Status)
	}
}
