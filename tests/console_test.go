package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The admin console in a real browser: Debian's chromium, headless, driven
// by chromedp, against the real binary. Every screen is checked with the
// axe-core accessibility engine (no serious or critical violation) and
// photographed at 1280×800; with KEYLENS_SCREENSHOTS=DIR the photographs
// are kept there (make screenshots writes docs/screenshots/).

// axeSource is axe-core's script, which scripts/test-deps.sh copies into
// testdata from the npm registry.
func axeSource(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "axe.min.js"))
	if err != nil {
		missingDependency(t, "axe-core is not in testdata/axe.min.js ("+err.Error()+")")
	}
	return string(b)
}

// ui is a browser session on the console.
type ui struct {
	t       *testing.T
	ctx     context.Context
	base    string // the console's URL, …/admin/
	axe     string
	shots   string
	checked map[string]bool // screens axe has checked
}

func newUI(t *testing.T, base string) *ui {
	chrome, axe := findBinary(t, "chromium", "chromium", "chromium-browser"), axeSource(t)
	profile, err := os.MkdirTemp("", "keylens-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // root in a container: chromium's sandbox needs user namespaces it may not have
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		// Chromium's helper processes may still be writing to the profile
		// for a moment after the browser exits (t.TempDir's cleanup then
		// fails the test): give them a few tries.
		for i := 0; ; i++ {
			if err := os.RemoveAll(profile); err == nil || i == 20 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	shots := os.Getenv("KEYLENS_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &ui{t: t, ctx: ctx, base: base, axe: axe, shots: shots, checked: map[string]bool{}}
	// The first Run starts the browser, bound to the context it is given:
	// not to one of run's short-lived ones.
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return u
}

// run runs actions with a deadline, failing the test with what it was doing.
func (u *ui) run(what string, actions ...chromedp.Action) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var body string
		_ = chromedp.Run(u.ctx, chromedp.Text("body", &body, chromedp.ByQuery))
		u.t.Fatalf("%s: %v\npage text: %.2000s", what, err, body)
	}
}

func (u *ui) open(path string) {
	u.t.Helper()
	u.run("open "+path, chromedp.Navigate(u.base+strings.TrimPrefix(path, "/admin/")), chromedp.WaitReady("main", chromedp.ByQuery))
}

// submit clicks a button and waits for the next page to show sel: the
// page it leaves is marked, so that sel is never found on the old one.
func (u *ui) submit(button, sel string) {
	u.t.Helper()
	u.run("click "+button, chromedp.Evaluate(`document.documentElement.dataset.left = "1"`, nil),
		chromedp.Click(button, chromedp.ByQuery), chromedp.WaitReady(`html:not([data-left])`, chromedp.ByQuery),
		chromedp.WaitVisible(sel, chromedp.ByQuery))
}

func (u *ui) text(sel string) string {
	u.t.Helper()
	var s string
	u.run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

func (u *ui) location() string {
	u.t.Helper()
	var s string
	u.run("read the location", chromedp.Location(&s))
	return s
}

// screen checks the page with axe and photographs it as name.png.
func (u *ui) screen(name string) {
	u.t.Helper()
	var violations []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	var res string
	u.run("axe "+name,
		chromedp.Evaluate(u.axe, nil),
		chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => ({
			id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))))`, &res,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if err := json.Unmarshal([]byte(res), &violations); err != nil {
		u.t.Fatalf("axe on %s: %v: %s", name, err, res)
	}
	for _, v := range violations {
		msg := fmt.Sprintf("axe on %s: %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, v.Nodes)
		if v.Impact == "serious" || v.Impact == "critical" {
			u.t.Error(msg)
		} else {
			u.t.Log(msg)
		}
	}
	u.checked[name] = true
	var png []byte
	u.run("photograph "+name, chromedp.CaptureScreenshot(&png))
	if err := os.WriteFile(filepath.Join(u.shots, name+".png"), png, 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// sidecarStatus asks the sidecar who owns key and returns the status.
func sidecarStatus(t *testing.T, in *instance, key string) (int, string) {
	req, _ := http.NewRequest("GET", in.SidecarURL+"/developer", nil)
	req.Header.Set("Authorization", key)
	r := send(t, req)
	return r.Status, string(r.Body)
}

// eventually polls until the sidecar answers want for key.
func eventually(t *testing.T, in *instance, key string, want int, contains string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body := sidecarStatus(t, in, key)
		if status == want && strings.Contains(body, contains) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sidecar answers %d %s, want %d with %q", status, body, want, contains)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var rawKeyText = regexp.MustCompile(`^[A-Za-z0-9+/=]{20,}$`)

func TestConsoleInABrowser(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_CONSOLE_GRAVATAR=false"})
	ids := seedConsole(t, in)
	u := newUI(t, in.AdminURL+"/admin/")

	// Sign in with the admin key.
	u.open("/admin/developers")
	if loc := u.location(); !strings.Contains(loc, "/admin/signin?next=") {
		t.Fatalf("an anonymous visit lands on %s", loc)
	}
	u.screen("signin")
	u.run("type the admin key", chromedp.SendKeys("#key", testAdminKey, chromedp.ByQuery))
	u.submit(`form[action="/admin/signin/key"] button`, "table")
	if h := u.text("h1"); h != "Developers" {
		t.Fatalf("after sign-in: %q", h)
	}
	u.screen("developers")
	u.run("search", chromedp.SendKeys("#q", "lovelace", chromedp.ByQuery))
	u.submit(`form[role=search] button`, "caption")
	if c := u.text("caption"); !strings.Contains(c, "1 developer whose email contains") {
		t.Errorf("search: %q", c)
	}

	// Add a developer.
	u.open("/admin/developers/new")
	u.run("fill Add Developer", chromedp.SendKeys("#email", "grace@example.com", chromedp.ByQuery),
		chromedp.SendKeys("#password", "battery-staple", chromedp.ByQuery),
		chromedp.SendKeys("#fv0", "Grace Hopper", chromedp.ByQuery), chromedp.SendKeys("#fv1", "Navy Labs", chromedp.ByQuery))
	u.screen("developer-add")
	u.submit(`form[action="/admin/developers"] button[type=submit]`, ".flash")
	if f := u.text(".flash"); f != "Developer added." {
		t.Fatalf("flash %q", f)
	}
	devURL := u.location()
	devID := devURL[strings.LastIndex(devURL, "/")+1:]
	devID, _, _ = strings.Cut(devID, "?")

	// Her portal files a key request; approve it and read the key once.
	r := in.do("POST", "/api/portal/requests", `{"by_user":"`+devID+`","apply_policies":["pol-payments"],"fields":{"Use case":"Fleet invoicing"}}`)
	if r.Status != http.StatusOK {
		t.Fatalf("file a request: %d %s", r.Status, r.Body)
	}
	u.open("/admin/requests")
	u.screen("requests")
	u.submit(`tr:has(a[href="/admin/developers/`+devID+`"]) form[action$="/approve"] button`, "#raw-key")
	u.screen("issued")
	if d := u.display(`button[data-copy="raw-key"]`); d == "none" {
		t.Error("the Copy button is hidden though the script that runs it is on")
	}
	issuedURL := u.location()
	raw := strings.TrimSpace(u.text("#raw-key"))
	if !rawKeyText.MatchString(raw) {
		t.Fatalf("issued key %q", raw)
	}
	eventually(t, in, raw, http.StatusOK, `"email":"grace@example.com"`)
	u.run("reload the issued page", chromedp.Navigate(issuedURL), chromedp.WaitVisible(".warning", chromedp.ByQuery))
	var body string
	u.run("read the reloaded page", chromedp.Text("main", &body, chromedp.ByQuery))
	if strings.Contains(body, raw) || !strings.Contains(body, "shown once and are gone") {
		t.Fatalf("the key shows twice: %s", body)
	}

	// Traffic for her usage chart, then her profile.
	sendHits(t, in, raw)
	u.open("/admin/developers/" + devID)
	if h := u.text("#usage ~ dl.totals dd"); h == "0" {
		t.Errorf("usage shows no hits")
	}
	u.screen("profile")
	u.run("scroll to the keys", chromedp.ScrollIntoView("#keys", chromedp.ByQuery))
	u.screen("profile-keys")

	// Change its policy: through the key's Options.
	u.run("open Options", chromedp.Click("details.options summary", chromedp.ByQuery), chromedp.WaitVisible(".menu a", chromedp.ByQuery))
	u.screen("key-options")
	u.run("Change Policy", chromedp.Click(`.menu a[href$="/policy"]`, chromedp.ByQuery), chromedp.WaitVisible("fieldset", chromedp.ByQuery))
	u.run("choose Payments Gold only", chromedp.Click(`input[value="pol-payments"]`, chromedp.ByQuery), chromedp.Click(`input[value="pol-gold"]`, chromedp.ByQuery))
	u.screen("change-policy")
	u.submit(`button.caps`, ".flash")
	if f := u.text(".flash"); f != "Key policy changed." || !u.inView(".flash") {
		t.Fatalf("flash %q (in view: %v)", f, u.inView(".flash"))
	}
	u.run("open Options", chromedp.Click("details.options summary", chromedp.ByQuery), chromedp.WaitVisible(".menu button", chromedp.ByQuery))
	u.submit(`.menu button`, ".flash")
	if f := u.text(".flash"); f != "Quota reset." || !u.inView(".flash") {
		t.Errorf("flash %q (in view: %v)", f, u.inView(".flash"))
	}
	eventually(t, in, raw, http.StatusOK, `"policies":["pol-gold"]`)

	// Key analytics.
	hash := keyHashFromProfile(t, u)
	u.open("/admin/developers/" + devID + "/keys/" + hash)
	u.screen("key-analytics")

	// Revoke it, with confirmation; the sidecar refuses it.
	u.open("/admin/developers/" + devID + "/keys/" + hash + "/revoke")
	u.screen("revoke-confirm")
	u.submit(`button.danger`, ".flash")
	if f := u.text(".flash"); !strings.HasPrefix(f, "Key revoked") || !u.inView(".flash") {
		t.Fatalf("flash %q (in view: %v)", f, u.inView(".flash"))
	}
	eventually(t, in, raw, http.StatusUnauthorized, "")
	// Key requests → Approved: the request whose key was revoked says so.
	u.open("/admin/requests")
	if txt := u.text(`tr:has(a[href="/admin/developers/` + devID + `"]) td:last-child`); !strings.Contains(txt, "(revoked)") {
		t.Errorf("the approved request of a revoked key: %q", txt)
	}

	// New Key: a second key, shown once.
	u.open("/admin/developers/" + devID + "/keys/new")
	u.run("choose Payments", chromedp.Click(`input[value="pol-payments"]`, chromedp.ByQuery), chromedp.SendKeys("#kf0", "Reporting", chromedp.ByQuery))
	u.screen("new-key")
	// Without scripts, the Copy button (which needs one) is not shown.
	u.run("turn scripts off", emulation.SetScriptExecutionDisabled(true))
	u.submit(`form[action$="/keys"] button[type=submit]`, "#raw-key")
	if d := u.display(`button[data-copy="raw-key"]`); d != "none" {
		t.Errorf("without scripts the Copy button shows (display %q)", d)
	}
	u.run("turn scripts on", emulation.SetScriptExecutionDisabled(false))
	second := strings.TrimSpace(u.text("#raw-key"))
	eventually(t, in, second, http.StatusOK, `"policies":["pol-payments"]`)

	// Deactivate the developer: her keys are refused.
	u.open("/admin/developers/" + devID + "/edit")
	u.screen("edit-profile")
	u.submit(`form[action$="/status"] button`, ".flash")
	if f := u.text(".flash"); !strings.HasPrefix(f, "Developer deactivated") {
		t.Fatalf("flash %q", f)
	}
	eventually(t, in, second, http.StatusForbidden, "")

	// Developer OAuth Clients: delete one, with confirmation.
	ada := ids["ada@lovelace.example"]
	u.open("/admin/developers/" + ada)
	u.run("scroll to the OAuth clients", chromedp.ScrollIntoView("#oauth", chromedp.ByQuery))
	u.screen("oauth-clients")
	if txt := u.text(`section[aria-labelledby=oauth] tbody`); !strings.Contains(txt, "Ledger sync") || !strings.Contains(txt, "https://ledger.example/cb") {
		t.Errorf("OAuth clients: %s", txt)
	}
	u.submit(`section[aria-labelledby=oauth] a[href$="/delete"]`, "button.danger")
	u.submit(`button.danger`, ".flash")
	if f := u.text(".flash"); f != "OAuth client deleted." || !u.inView(".flash") || !strings.Contains(u.text("section[aria-labelledby=oauth]"), "No OAuth clients.") {
		t.Errorf("after deleting the OAuth client: %q", f)
	}

	// A JWT request a custom portal filed without material: Approve asks
	// for it.
	alan := ids["alan@turing.example"]
	if r := in.do("POST", "/api/portal/requests", `{"by_user":"`+alan+`","apply_policies":["pol-events"],"fields":{"Use case":"Event replay"}}`); r.Status != http.StatusOK {
		t.Fatalf("file a jwt request: %d %s", r.Status, r.Body)
	}
	u.open("/admin/requests")
	u.submit(`tr:has(a[href="/admin/developers/`+alan+`"]) a[href$="/approve"]`, "#jwt_secret")
	u.screen("request-approve")
	u.run("give a secret", chromedp.SendKeys("#jwt_secret", "short", chromedp.ByQuery))
	u.submit(`form[action$="/approve"] button[type=submit]`, ".error")
	if e := u.text(".error"); !strings.Contains(e, "at least 32 bytes") {
		t.Errorf("a short secret: %q", e)
	}
	u.run("give a longer secret", chromedp.Clear("#jwt_secret", chromedp.ByQuery),
		chromedp.SendKeys("#jwt_secret", "an-hmac-secret-of-at-least-32-bytes!", chromedp.ByQuery))
	u.submit(`form[action$="/approve"] button[type=submit]`, "#raw-key")

	// The admin listener answers the icon without a session.
	var icon int
	u.run("fetch /favicon.ico", chromedp.Evaluate(`fetch("/favicon.ico", {credentials: "omit"}).then(r => r.status)`, &icon,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if icon != http.StatusOK {
		t.Errorf("/favicon.ico: %d", icon)
	}

	// The other screens.
	u.open("/admin/developers/" + devID + "/delete")
	u.screen("delete-confirm")
	u.open("/admin/catalogue")
	u.screen("catalogue")
	u.open("/admin/catalogue/edit?policy=pol-gold")
	u.screen("catalogue-entry")
	u.open("/admin/configuration")
	u.screen("configuration")
	u.open("/admin/admins")
	u.run("add an admin", chromedp.SendKeys("#email", "ops@example.com", chromedp.ByQuery),
		chromedp.SendKeys("#password", "a-long-admin-password", chromedp.ByQuery),
		chromedp.SendKeys("#password_again", "a-long-admin-password", chromedp.ByQuery))
	u.submit(`form[action="/admin/admins"] button[type=submit]`, ".flash")
	u.screen("admins")
	u.open("/admin/activity")
	u.screen("activity")
	u.open("/admin/activity?developer=grace@example.com")
	u.screen("activity-developer")
	if txt := u.text("tbody"); !strings.Contains(txt, "deactivated") || !strings.Contains(txt, "revoked key") ||
		!strings.Contains(txt, "changed key policy") || !strings.Contains(txt, "approved key request") {
		t.Errorf("her activity: %s", txt)
	}
	u.open("/admin/developers/000000000000000000000000")
	u.screen("not-found")

	// Sign out.
	u.submit(`form[action="/admin/signout"] button`, "#key")
	if f := u.text(".flash"); f != "You are signed out." {
		t.Errorf("after sign-out: %q", f)
	}
	t.Logf("axe checked %d screens; screenshots in %s", len(u.checked), u.shots)
}

// inView reports whether the element sel selects is inside the window.
func (u *ui) inView(sel string) bool {
	u.t.Helper()
	var in bool
	u.run("is "+sel+" in view", chromedp.Evaluate(`(() => { const r = document.querySelector(`+jsString(sel)+`).getBoundingClientRect();
		return r.top >= 0 && r.bottom <= window.innerHeight; })()`, &in))
	return in
}

// display is the computed CSS display of the element sel selects.
func (u *ui) display(sel string) string {
	u.t.Helper()
	var d string
	u.run("display of "+sel, chromedp.Evaluate(`getComputedStyle(document.querySelector(`+jsString(sel)+`)).display`, &d))
	return d
}

func keyHashFromProfile(t *testing.T, u *ui) string {
	t.Helper()
	var href string
	var ok bool
	u.run("read the key's link", chromedp.AttributeValue(`section[aria-labelledby=keys] table td a`, "href", &href, &ok, chromedp.ByQuery))
	return href[strings.LastIndex(href, "/")+1:]
}

// seedConsole fills the store through the REST API, as a portal and an
// admin's scripts would: a catalogue, a configuration, developers with
// keys, requests and an OAuth client.
func seedConsole(t *testing.T, in *instance) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, c := range []struct{ method, path, body string }{
		{"PUT", "/api/portal/catalogue", `{"apis":[
			{"name":"Payments","policy_id":"pol-payments","api_id":"payments","show":true,"auth_type":"authToken","short_description":"Take card payments"},
			{"name":"Payments Gold","policy_id":"pol-gold","api_id":"payments","auth_type":"authToken","short_description":"Higher limits"},
			{"name":"Reports","policy_id":"pol-reports","api_id":"reports","show":true,"auth_type":"basic","short_description":"Monthly statements"},
			{"name":"Partner","policy_id":"pol-partner","api_id":"partner","auth_type":"oauth","short_description":"Partner integrations"},
			{"name":"Events","policy_id":"pol-events","api_id":"events","auth_type":"jwt","short_description":"Event stream"}]}`},
		{"PUT", "/api/portal/configuration", `{"require_key_approval":true,"key_request_fields":["Use case"],"signup_fields":["Name","Company"]}`},
	} {
		if r := in.do(c.method, c.path, c.body); r.Status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	people := [][3]string{{"ada@lovelace.example", "Ada Lovelace", "Analytical Engines"}, {"alan@turing.example", "Alan Turing", "Bletchley"},
		{"barbara@liskov.example", "Barbara Liskov", "CLU Labs"}, {"edsger@dijkstra.example", "Edsger Dijkstra", "THE"},
		{"katherine@johnson.example", "Katherine Johnson", "NASA"}, {"linus@torvalds.example", "", ""},
		{"margaret@hamilton.example", "Margaret Hamilton", "Apollo"}, {"tim@berners-lee.example", "Tim Berners-Lee", "CERN"}}
	for i, p := range people {
		fields := `{}`
		if p[1] != "" {
			fields = `{"Name":"` + p[1] + `","Company":"` + p[2] + `"}`
		}
		r := in.do("POST", "/api/portal/developers", `{"email":"`+p[0]+`","fields":`+fields+`}`)
		if r.Status != http.StatusOK {
			t.Fatalf("create %s: %d %s", p[0], r.Status, r.Body)
		}
		id := decodeAs[envelope](t, r).Message
		ids[p[0]] = id
		switch i {
		case 0:
			in.do("POST", "/api/portal/developers/"+id+"/keys", `{"apply_policies":["pol-reports"]}`)
			in.do("POST", "/api/portal/developers/"+id+"/keys", `{"apply_policies":["pol-partner"],"fields":{"oauth_app_description":"Ledger sync"},"oauth_info":{"redirect_uri":"https://ledger.example/cb"}}`)
		case 1, 2:
			in.do("POST", "/api/portal/requests", `{"by_user":"`+id+`","apply_policies":["pol-gold"],"fields":{"Use case":"Higher volume for `+p[2]+`"}}`)
		}
	}
	if r := in.do("DELETE", "/api/portal/developers/"+decodeAs[envelope](t, in.do("POST", "/api/portal/developers", `{"email":"gone@example.com"}`)).Message, ""); r.Status != http.StatusOK {
		t.Fatalf("delete: %d", r.Status)
	}
	return ids
}

// sendHits reports 30 days of traffic for key to the sidecar: a 200 means
// committed.
func sendHits(t *testing.T, in *instance, key string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	now := time.Now().UTC()
	for d := 29; d >= 0; d-- {
		at := now.AddDate(0, 0, -d).Truncate(time.Hour).Format(time.RFC3339)
		ok := 300 + (29-d)*25 + (d%7)*60
		if d%7 == 0 || d%7 == 6 {
			ok /= 3 // weekends
		}
		fmt.Fprintf(&b, `{"key":%q,"api_id":"payments","code":200,"time":%q,"count":%d},`, key, at, ok)
		fmt.Fprintf(&b, `{"key":%q,"api_id":"payments","code":429,"time":%q,"count":%d},`, key, at, 4+d%5*3)
		if d == 12 {
			fmt.Fprintf(&b, `{"key":%q,"api_id":"payments","code":502,"time":%q,"count":120},`, key, at)
		}
	}
	body := strings.TrimSuffix(b.String(), ",") + "]"
	req, _ := http.NewRequest("POST", in.SidecarURL+"/hits", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if r := send(t, req); r.Status != http.StatusOK {
		t.Fatalf("POST /hits: %d %s", r.Status, r.Body)
	}
}
