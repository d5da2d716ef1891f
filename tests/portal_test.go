package tests

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/mailer/smtptest"
)

// The developer portal in a real browser (chromium, chromedp), against the
// real binary, with a real SMTP server receiving its emails: sign up,
// request a key issued at once and one approved by an admin, read each
// once, use them at the sidecar, see the traffic in the dashboard, rotate
// the key and use both during the grace, edit the
// profile, change the password (a reused one refused), reset it by email
// and log in with the new one. axe-core checks every screen.

var portalResetLink = regexp.MustCompile(`https?://[^\s]+/reset/[A-Za-z0-9_-]{43}`)

func TestPortalInABrowser(t *testing.T) {
	mail := smtptest.Start(t, nil)
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey},
		"--smtp-url", "smtp://"+mail.Addr, "--mail-from", "developers@example.com")
	if in.PortalURL == "" {
		t.Fatal("the ready file names no portal")
	}
	seedPortal(t, in, false)
	u := newUI(t, in.PortalURL)

	// The public catalogue; sign up from it.
	u.open("/")
	u.screen("portal-catalogue")
	if txt := u.text("main"); !strings.Contains(txt, "Payments") || strings.Contains(txt, "Payments Gold") {
		t.Errorf("catalogue: %s", txt)
	}
	u.run("go to sign-up", chromedp.Click(`main a[href="/signup"]`, chromedp.ByQuery), chromedp.WaitVisible("#email", chromedp.ByQuery))
	u.run("fill sign-up", chromedp.SendKeys("#email", "grace@example.com", chromedp.ByQuery),
		chromedp.SendKeys("#password", "first-pass", chromedp.ByQuery), chromedp.SendKeys("#sf0", "Navy Labs", chromedp.ByQuery))
	u.screen("portal-signup")
	u.submit(`form[action="/signup"] button`, ".flash")
	if f := u.text(".flash"); !strings.HasPrefix(f, "Welcome!") {
		t.Fatalf("after sign-up: %q", f)
	}

	// A key issued at once, shown once, working at the sidecar.
	u.open("/catalogue")
	u.submit(`a[href="/keys/new?policy=pol-payments"]`, "#kf0")
	u.run("fill the request", chromedp.SendKeys("#kf0", "Fleet invoicing", chromedp.ByQuery))
	u.screen("portal-request")
	u.submit(`form[action="/keys"] button`, "#raw-key")
	u.screen("portal-issued")
	issuedURL := u.location()
	raw := strings.TrimSpace(u.text("#raw-key"))
	if !rawKeyText.MatchString(raw) {
		t.Fatalf("issued key %q", raw)
	}
	eventually(t, in, raw, http.StatusOK, `"email":"grace@example.com"`)
	u.run("reload the issued page", chromedp.Navigate(issuedURL), chromedp.WaitVisible(".warning", chromedp.ByQuery))
	if body := u.text("main"); strings.Contains(body, raw) || !strings.Contains(body, "shown once and is gone") {
		t.Fatalf("the key shows twice: %s", body)
	}

	// Its traffic (as the gateway's plugin reports it) in the dashboard.
	sendHits(t, in, raw)
	u.open("/dashboard")
	if hits := u.text(`section[aria-labelledby=keys] tbody td.num`); hits == "0" {
		t.Errorf("the key's row shows no hits")
	}
	if total := u.text("#usage ~ dl.totals dd"); total == "0" {
		t.Errorf("the usage chart shows no hits")
	}
	u.screen("portal-dashboard")
	u.submit(`section[aria-labelledby=keys] tbody a`, "figure.chart")
	u.screen("portal-key")

	// Rotate it from its page: the new key is shown once, and during the
	// grace both work at the sidecar, each under its own hash; the old one
	// says when it stops.
	u.run("choose the grace", chromedp.SetValue("#grace", "1h0m0s", chromedp.ByQuery))
	u.submit(`form[action$="/rotate"] button`, "#raw-key")
	u.screen("portal-rotated")
	rotated := strings.TrimSpace(u.text("#raw-key"))
	if !rawKeyText.MatchString(rotated) || rotated == raw {
		t.Fatalf("rotated key %q (old %q)", rotated, raw)
	}
	if body := u.text("main"); !strings.Contains(body, "It replaces key "+keylens.HashKey(raw)[:8]) || !strings.Contains(body, "keeps working until") {
		t.Errorf("the rotation does not say what it replaced: %s", body)
	}
	eventually(t, in, rotated, http.StatusOK, `"key_id":"`+keylens.HashKey(rotated)+`"`)
	eventually(t, in, raw, http.StatusOK, `"key_id":"`+keylens.HashKey(raw)+`"`)
	u.open("/dashboard")
	if body := u.text(`section[aria-labelledby=keys]`); !strings.Contains(body, "stops working in 1 hour") ||
		!strings.Contains(body, keylens.HashKey(rotated)[:8]) {
		t.Errorf("the dashboard after the rotation: %s", body)
	}
	u.screen("portal-dashboard-rotated")
	u.open("/keys/" + keylens.HashKey(raw))
	if body := u.text("main"); !strings.Contains(body, "Stops working in 1 hour") {
		t.Errorf("the old key's page: %s", body)
	}
	u.screen("portal-key-replaced")

	// With approval required: pending, approved by an admin, shown once
	// on the next visit, and working at the sidecar.
	seedPortal(t, in, true)
	u.open("/keys/new?policy=pol-reports")
	u.submit(`form[action="/keys"] button`, ".flash")
	if f := u.text(".flash"); !strings.HasPrefix(f, "Key requested") {
		t.Fatalf("after requesting: %q", f)
	}
	u.run("scroll to the pending requests", chromedp.ScrollIntoView("#pending", chromedp.ByQuery))
	u.screen("portal-pending")
	if txt := u.text("#pending ~ table tbody"); !strings.Contains(txt, "An admin's approval") {
		t.Errorf("the pending request does not say what it waits for: %s", txt)
	}
	reqs := decodeAs[struct {
		Data []struct {
			ID string `json:"id"`
		}
	}](t, in.do("GET", "/api/portal/requests?approved=false", "")).Data
	if len(reqs) != 1 {
		t.Fatalf("%d pending requests, want 1", len(reqs))
	}
	reqID := reqs[0].ID
	if r := in.do("PUT", "/api/portal/requests/approve/"+reqID, ""); r.Status != http.StatusOK {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	u.open("/dashboard")
	u.screen("portal-approved")
	user, pass := strings.TrimSpace(u.text("#username-1")), strings.TrimSpace(u.text("#password-1"))
	eventually(t, in, "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)), http.StatusOK, `"email":"grace@example.com"`)
	u.open("/dashboard")
	if body := u.text("main"); strings.Contains(body, pass) || strings.Contains(body, "Approved since your last visit") {
		t.Errorf("the approved credentials show twice")
	}

	// An OAuth client, listed afterwards.
	seedPortal(t, in, false)
	u.open("/keys/new?policy=pol-partner")
	u.run("fill the OAuth request", chromedp.SendKeys("#redirect_uri", "https://fleet.example/callback", chromedp.ByQuery),
		chromedp.SendKeys("#app_description", "Fleet console", chromedp.ByQuery))
	u.screen("portal-request-oauth")
	if n := u.count(`label`, "Use case"); n != 1 {
		t.Errorf("the OAuth request form asks for the use case %d times", n)
	}
	u.submit(`form[action="/keys"] button`, "#client-secret")
	clientID, clientSecret := strings.TrimSpace(u.text("#client-id")), strings.TrimSpace(u.text("#client-secret"))
	u.open("/oauth-clients")
	if txt := u.text("tbody"); !strings.Contains(txt, "Fleet console") || !strings.Contains(txt, "https://fleet.example/callback") {
		t.Errorf("OAuth clients: %s", txt)
	}
	u.screen("portal-oauth")

	// The client gets a token from the sidecar; the developer revokes it
	// on the client's page, and the sidecar refuses it.
	r := postForm(t, in.SidecarURL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}},
		"Basic "+base64.StdEncoding.EncodeToString([]byte(clientID+":"+clientSecret)))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("a token for the portal's client: %d %s", r.Status, r.Body)
	}
	eventually(t, in, "Bearer "+tok.AccessToken, http.StatusOK, `"email":"grace@example.com"`)
	u.open("/oauth-clients/" + clientID)
	u.run("paste the token", chromedp.SendKeys("#token", tok.AccessToken, chromedp.ByQuery))
	u.screen("portal-client")
	u.submit(`form[action$="/revoke"] button`, ".flash")
	eventually(t, in, "Bearer "+tok.AccessToken, http.StatusUnauthorized, "")

	// Edit the profile.
	u.open("/profile")
	u.run("fill the profile", chromedp.SendKeys("#pf0", "Grace Hopper", chromedp.ByQuery),
		chromedp.SendKeys("#pf1", "+1 202 555 0100", chromedp.ByQuery), chromedp.SendKeys("#pf2", "United States", chromedp.ByQuery))
	u.screen("portal-profile")
	u.submit(`form[action="/profile"] button`, ".flash")
	if v := u.value("#pf2"); v != "United States" {
		t.Errorf("country location after saving: %q", v)
	}

	// Change the password: the current one again is refused.
	u.open("/password")
	u.run("reuse the password", chromedp.SendKeys("#current", "first-pass", chromedp.ByQuery), chromedp.SendKeys("#password", "first-pass", chromedp.ByQuery))
	u.submit(`form[action="/password"] button`, ".error")
	u.screen("portal-password-reused")
	u.run("a new password", chromedp.SendKeys("#current", "first-pass", chromedp.ByQuery), chromedp.SendKeys("#password", "second-pass", chromedp.ByQuery))
	u.submit(`form[action="/password"] button`, ".flash")

	// Log out; reset the password by email and log in with the new one.
	u.submit(`form[action="/logout"] button`, "#email")
	u.screen("portal-login")
	u.submit(`a[href="/reset"]`, "#email")
	u.run("ask for a reset", chromedp.SendKeys("#email", "grace@example.com", chromedp.ByQuery))
	u.screen("portal-reset")
	u.submit(`form[action="/reset"] button`, ".flash")
	u.screen("portal-reset-sent")
	m := mail.Wait(t, 1, 10*time.Second)
	link := portalResetLink.FindString(m.Body)
	if m.To[0] != "grace@example.com" || !strings.HasPrefix(link, in.PortalURL+"/reset/") {
		t.Fatalf("reset email to %v: %q", m.To, m.Body)
	}
	u.run("follow the link", chromedp.Navigate(link), chromedp.WaitVisible("#password", chromedp.ByQuery))
	u.screen("portal-reset-set")
	u.run("a new password", chromedp.SendKeys("#password", "third-pass", chromedp.ByQuery))
	u.submit(`form[action^="/reset/"] button`, ".flash")
	// The link, used: its page says "Log in", as the rest of the portal.
	u.run("follow the used link", chromedp.Navigate(link), chromedp.WaitVisible("main", chromedp.ByQuery))
	if txt := u.text("main"); !strings.Contains(txt, "Log in") || strings.Contains(txt, "Sign in") {
		t.Errorf("the used reset link's page: %q", txt)
	}
	u.open("/login")
	u.run("log in with it", chromedp.SendKeys("#email", "grace@example.com", chromedp.ByQuery), chromedp.SendKeys("#password", "third-pass", chromedp.ByQuery))
	u.submit(`form[action="/login"] button`, "section[aria-labelledby=keys]")
	if h := u.text("h1"); h != "Dashboard" && !strings.Contains(h, "Grace Hopper") {
		t.Errorf("after logging in: %q", h)
	}
	u.open("/no-such-page")
	u.screen("portal-not-found")
	t.Logf("axe checked %d screens; screenshots in %s", len(u.checked), u.shots)
}

// count is the number of elements sel selects whose text is text.
func (u *ui) count(sel, text string) int {
	u.t.Helper()
	var n int
	u.run("count "+sel, chromedp.Evaluate(`[...document.querySelectorAll(`+jsString(sel)+`)].filter(e => e.textContent.trim() === `+
		jsString(text)+`).length`, &n))
	return n
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// value reads a form control's value.
func (u *ui) value(sel string) string {
	u.t.Helper()
	var s string
	u.run("read "+sel, chromedp.Value(sel, &s, chromedp.ByQuery))
	return s
}

// seedPortal publishes the catalogue and the configuration, with or
// without required approval of key requests.
func seedPortal(t *testing.T, in *instance, approval bool) {
	t.Helper()
	cfg := `{"require_key_approval":false,"key_request_fields":["Use case"],"signup_fields":["Company"]}`
	if approval {
		cfg = strings.Replace(cfg, "false", "true", 1)
	}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/portal/catalogue", `{"apis":[
			{"name":"Payments","policy_id":"pol-payments","api_id":"payments","show":true,"auth_type":"authToken","short_description":"Take card payments","long_description":"Charge cards, refund and list payments. Keys work at once."},
			{"name":"Payments Gold","policy_id":"pol-gold","api_id":"payments","auth_type":"authToken","short_description":"Higher limits"},
			{"name":"Reports","policy_id":"pol-reports","api_id":"reports","show":true,"auth_type":"basic","short_description":"Monthly statements","long_description":"Statements as CSV and PDF, with a username and password."},
			{"name":"Partner","policy_id":"pol-partner","api_id":"partner","show":true,"auth_type":"oauth","short_description":"Partner integrations","long_description":"Act for your users with an OAuth client."},
			{"name":"Events","policy_id":"pol-events","api_id":"events","show":true,"auth_type":"jwt","short_description":"Event stream","long_description":"Sign your own JWTs with your HMAC secret or key pair."}]}`},
		{"PUT", "/api/portal/configuration", cfg},
	} {
		if r := in.do(c.method, c.path, c.body); r.Status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
}
