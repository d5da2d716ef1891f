package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

const xss = `<script>alert(1)</script>`

func TestScriptInFieldsIsShownEscaped(t *testing.T) {
	tc := newTestConsole(t)
	ctx := context.Background()
	if err := tc.db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
		{Name: xss, PolicyID: "pol-x", ShortDescription: xss, APIID: xss}}}); err != nil {
		t.Fatal(err)
	}
	if err := tc.db.PutPortalConfig(ctx, &keylens.PortalConfig{SignupFields: []string{xss}, KeyRequestFields: []string{xss}}); err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "x@example.com", Fields: map[string]string{xss: xss, "Name": xss}}
	if err := tc.db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := tc.db.CreateKeyRequest(ctx, &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-x"},
		Fields: map[string]any{xss: xss}}); err != nil {
		t.Fatal(err)
	}
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-x"}})
	if err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	// Typed into a form, too.
	p := b.post("/admin/developers", url.Values{"email": {"y@example.com"}, "field_name": {xss}, "field_value": {xss}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("add developer with a script field: %d\n%s", p.Status, text(p.Body))
	}
	for _, path := range []string{"/admin/developers", "/admin/developers?q=" + url.QueryEscape(xss), "/admin/developers/" + d.ID,
		"/admin/developers/" + d.ID + "/edit", "/admin/developers/" + d.ID + "/keys/new", "/admin/developers/" + d.ID + "/keys/" + a.KeyHash,
		"/admin/developers/" + d.ID + "/keys/" + a.KeyHash + "/policy", "/admin/requests", "/admin/catalogue",
		"/admin/catalogue/edit?policy=pol-x", "/admin/configuration", "/admin/activity", "/admin/developers/new"} {
		p := b.get(path)
		if p.Status != http.StatusOK {
			t.Errorf("GET %s: %d", path, p.Status)
			continue
		}
		if strings.Contains(p.Body, "<script>alert") {
			t.Errorf("GET %s shows the script unescaped", path)
		}
		if !strings.Contains(p.Body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s does not show the escaped script", path)
		}
	}
	// Nor in a sign-in form's echo.
	s := tc.browser()
	s.get("/admin/signin")
	p = s.post("/admin/signin", url.Values{"email": {xss}, "password": {"x"}})
	if strings.Contains(p.Body, "<script>alert") {
		t.Error("the sign-in form echoes the script unescaped")
	}
}

func TestDevelopersListSearchesAndPages(t *testing.T) {
	tc := newTestConsole(t)
	var devs []*keylens.Developer
	for i := range 45 {
		domain := "example.com"
		if i%3 == 0 {
			domain = "acme.io"
		}
		devs = append(devs, &keylens.Developer{Email: fmt.Sprintf("dev%02d@%s", i, domain)})
	}
	if err := tc.db.CreateDevelopers(context.Background(), devs); err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	p := b.get("/admin/developers")
	want(t, p, http.StatusOK, "45 developers", "dev00@acme.io", "dev19@example.com", "Page 1 of 3", `href="/admin/developers?p=2"`)
	if strings.Contains(p.Body, "dev20@") {
		t.Error("page 1 holds a 21st developer")
	}
	p = b.get("/admin/developers?p=3")
	want(t, p, http.StatusOK, "dev40@", "dev44@", "Page 3 of 3", `href="/admin/developers?p=2"`)
	p = b.get("/admin/developers?q=ACME.io")
	want(t, p, http.StatusOK, "15 developers whose email contains “ACME.io”", "dev42@acme.io")
	if strings.Contains(p.Body, "@example.com") {
		t.Error("search shows a developer it does not match")
	}
	want(t, b.get("/admin/developers?q=acme&p=99"), http.StatusOK, "No developer on this page.")
	want(t, b.get("/admin/developers?q=%25"), http.StatusOK, "0 developers") // LIKE wildcards are literal
	want(t, b.get("/admin/developers?q=a%00b"), http.StatusBadRequest)
	want(t, b.get("/admin/developers?p=-4"), http.StatusOK, "Page 1 of 3")
	want(t, b.get("/admin/developers?p=99999999999999999999"), http.StatusOK, "Page 1 of 3")
}

func TestAddDeveloper(t *testing.T) {
	tc := newTestConsole(t)
	tc.fixture()
	b := tc.signedIn()
	p := b.get("/admin/developers/new")
	want(t, p, http.StatusOK, "Add Developer", "Basic Details", `<label for="fv0">Name</label>`, `<label for="fv1">Company</label>`)
	p = b.post("/admin/developers", url.Values{"email": {"grace@example.com"}, "password": {"battery-staple"},
		"field_name": {"Name", "Company", "", "Team"}, "field_value": {"Grace Hopper", "", "ignored", "Compilers"}})
	p = b.follow(p)
	want(t, p, http.StatusOK, "Developer added.", "grace@example.com", "Grace Hopper", "Compilers")
	d, err := tc.db.FindDeveloperByEmail(context.Background(), "grace@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Fields) != 2 || d.Fields["Name"] != "Grace Hopper" || d.Fields["Team"] != "Compilers" || !keylens.CheckPassword(d.PasswordHash, "battery-staple") {
		t.Errorf("stored %+v", d)
	}
	// Rules broken: the form again, with the message and what was typed.
	want(t, b.post("/admin/developers", url.Values{"email": {"GRACE@example.com"}}), http.StatusConflict,
		"A developer with this email already exists", `value="GRACE@example.com"`)
	want(t, b.post("/admin/developers", url.Values{"email": {"not-an-email"}}), http.StatusBadRequest, "Email address is not valid")
	want(t, b.post("/admin/developers", url.Values{"email": {"short@example.com"}, "password": {"12345"}}), http.StatusBadRequest,
		"Password must be at least 6 characters")
	want(t, b.post("/admin/developers", url.Values{"email": {"dup@example.com"}, "field_name": {"A", "A"}, "field_value": {"1", "2"}}),
		http.StatusBadRequest, "named twice")
	entries, _, _ := tc.db.FindAudit(context.Background(), keylens.AuditFilter{DeveloperID: d.ID})
	if len(entries) != 1 || entries[0].Actor != "admin key" || entries[0].Via != "console" || entries[0].Action != keylens.AuditDeveloperCreated {
		t.Errorf("audit of the console's add: %+v", entries)
	}
}

func TestProfile(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments", "pol-gold"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-partner"},
		OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}, Fields: map[string]any{"oauth_app_description": "Sync app"}}); err != nil {
		t.Fatal(err)
	}
	// A key the catalogue does not know, imported with the developer.
	if _, err := tc.db.PatchDeveloper(ctx, d.ID, keylens.DeveloperPatch{}); err != nil {
		t.Fatal(err)
	}
	cur, _ := tc.db.FindDeveloperByID(ctx, d.ID)
	cur.Keys["00c0ffee"] = []string{"pol-legacy"}
	if err := tc.db.UpdateDeveloper(ctx, d.ID, cur); err != nil {
		t.Fatal(err)
	}
	// Hits: three days ago and today; one outside the 30 days.
	now := tc.clock()
	day := func(n int) time.Time { return now.Truncate(24*time.Hour).AddDate(0, 0, -n).Add(3 * time.Hour) }
	hit := func(daysAgo, code int, n int64) keylens.HitDelta {
		h := day(daysAgo)
		s := keylens.HitDelta{KeyHash: a.KeyHash, APIID: "payments", Hour: h.Unix() / 3600, Code: code, Hits: n, LastHit: h.UnixNano()}
		if code < 300 {
			s.Success = n
		} else if code >= 400 {
			s.Errors = n
		}
		return s
	}
	if _, err := tc.db.AddHits(ctx, []keylens.HitBatch{{Series: []keylens.HitDelta{
		hit(3, 200, 40), hit(3, 500, 2), hit(0, 429, 5), hit(0, 204, 1000), hit(40, 200, 7),
	}}}); err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	p := b.get("/admin/developers/" + d.ID)
	want(t, p, http.StatusOK,
		"Developer Profile Overview", `<dt>Name</dt><dd>Ada Lovelace</dd>`, `<dt>Company</dt><dd>Analytical Engines</dd>`, `<dt>Team</dt><dd>Core</dd>`,
		`<div class="avatar" aria-hidden="true">AL`,
		"Developer Usage", "<dt>Hits</dt><dd>1,047</dd>", "<dt>Successes</dt><dd>1,040</dd>", "<dt>Errors</dt><dd>7</dd>",
		`<svg viewBox="0 0 720 260" role="img"`, `<polyline class="line hits"`,
		"Developer Keys", "<code>"+a.KeyHash[:8]+"…</code>", "Payments <code>pol-payments</code>", "Payments Gold <code>pol-gold</code>",
		`<span class="nocat">(No Catalog Entry)</span> <code>pol-legacy</code>`, "Change Policy", "Reset quota", "Revoke…", "New Key",
		"Developer OAuth Clients", "Sync app", "https://app.example.com/cb", "Partner <code>pol-partner</code>")
	// Sign-up fields come first, in the configuration's order.
	if i, j, k := strings.Index(p.Body, "<dt>Name</dt>"), strings.Index(p.Body, "<dt>Company</dt>"), strings.Index(p.Body, "<dt>Team</dt>"); !(i < j && j < k) {
		t.Error("fields are not in sign-up order")
	}
	// A chosen range.
	from, to := day(45).Format(time.DateOnly), day(35).Format(time.DateOnly)
	want(t, b.get("/admin/developers/"+d.ID+"?from="+from+"&to="+to), http.StatusOK, "<dt>Hits</dt><dd>7</dd>", `value="`+from+`"`)
	want(t, b.get("/admin/developers/"+d.ID+"?from=2026-02-30&to=x"), http.StatusOK, "Give both dates as YYYY-MM-DD", "<dt>Hits</dt><dd>1,047</dd>")
	want(t, b.get("/admin/developers/"+d.ID+"?from=2020-01-01&to=2026-01-01"), http.StatusOK, "A range is at most 366 days")
	want(t, b.get("/admin/developers/000000000000000000000000"), http.StatusNotFound, "Developer not found")

	// Key analytics: the key's chart and its status codes.
	p = b.get("/admin/developers/" + d.ID + "/keys/" + a.KeyHash)
	want(t, p, http.StatusOK, "Key analytics", a.KeyHash, "<td>204</td><td class=\"num\">1,000</td>", "<td>429</td><td class=\"num\">5</td>",
		"<td>500</td><td class=\"num\">2</td>", "<dt>Hits</dt><dd>1,047</dd>")
	// Another developer's key is not found under this one.
	other := &keylens.Developer{Email: "other@example.com"}
	if err := tc.db.CreateDeveloper(ctx, other); err != nil {
		t.Fatal(err)
	}
	want(t, b.get("/admin/developers/"+other.ID+"/keys/"+a.KeyHash), http.StatusNotFound)
}

func TestChartLayout(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := []keylens.HitRow{
		{Period: from.AddDate(0, 0, 2), Code: 200, Hits: 10, Success: 9, Errors: 1},
		{Period: from.AddDate(0, 0, 2), Code: 500, Hits: 5, Errors: 5},
		{Period: from.AddDate(0, 0, 40), Code: 200, Hits: 1000}, // outside: ignored
	}
	ch := drawChart(rows, from, from.AddDate(0, 0, 29), "x")
	if len(ch.Days) != 30 || ch.Days[2].Hits != 15 || ch.Days[2].Errors != 6 || ch.Hits != 15 || ch.Errors != 6 || ch.Success != 9 {
		t.Fatalf("days %+v totals %d/%d/%d", ch.Days[:3], ch.Hits, ch.Success, ch.Errors)
	}
	if top := ch.YTicks[len(ch.YTicks)-1]; top.Label != "15" || top.Pos != ch.Top {
		t.Errorf("y axis top %+v, want 15 at the top", top)
	}
	pts := strings.Fields(ch.Series[0].Points)
	if len(pts) != 30 || pts[0] != "56.0,224.0" || pts[29] != "704.0,224.0" {
		t.Errorf("hits line %v…", pts[:2])
	}
	if one := drawChart(nil, from, from, "x"); len(one.Days) != 1 || !one.Empty || one.Series[0].Points != "380.0,224.0" {
		t.Errorf("one empty day: %+v", one.Series[0])
	}
	for _, c := range []struct{ v, top, step int64 }{{0, 4, 1}, {4, 4, 1}, {5, 6, 2}, {16, 20, 5}, {1047, 1500, 500}, {99999, 100000, 50000}} {
		if top, step := niceScale(c.v); top != c.top || step != c.step {
			t.Errorf("niceScale(%d) = %d, %d; want %d, %d", c.v, top, step, c.top, c.step)
		}
	}
}

var issuedLink = regexp.MustCompile(`^/admin/issued/[A-Za-z0-9_-]{43}$`)

func TestNewKeyIsShownOnce(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	b := tc.signedIn()
	want(t, b.get("/admin/developers/"+d.ID+"/keys/new"), http.StatusOK, "New Key", "Payments <code>pol-payments</code>",
		`<label for="kf0">Use case</label>`, "Request Key")
	p := b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-payments", "pol-gold"},
		"field_name": {"Use case"}, "field_value": {"invoicing"}})
	if p.Status != http.StatusSeeOther || !issuedLink.MatchString(p.Header.Get("Location")) {
		t.Fatalf("Request Key: %d → %q\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	if strings.Contains(p.Header.Get("Location"), "ey") && strings.Contains(p.Body, "eyJ") {
		t.Error("the key travels in the redirect")
	}
	link := p.Header.Get("Location")
	p = b.get(link)
	want(t, p, http.StatusOK, "They will not be shown again", `<output id="raw-key">`, "pol-payments")
	raw := regexp.MustCompile(`<output id="raw-key">([^<]+)</output>`).FindStringSubmatch(p.Body)[1]
	k, err := tc.db.FindKey(context.Background(), keylens.KeyHashOf(raw))
	if err != nil || k.DeveloperID != d.ID || strings.Join(k.Policies, ",") != "pol-payments,pol-gold" || k.Fields["Use case"] != "invoicing" {
		t.Fatalf("the shown key is not the stored one: %+v, %v", k, err)
	}
	// Once: a reload, or another session, finds nothing.
	want(t, b.get(link), http.StatusGone, "shown once and are gone")
	if strings.Contains(b.get(link).Body, raw) {
		t.Error("the key is shown twice")
	}
	// Basic and OAuth and JWT show what they issue.
	p = b.follow(b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-reports"}}))
	want(t, p, http.StatusOK, "Basic credentials", `<output id="username">`, `<output id="password">`)
	p = b.follow(b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-partner"}, "redirect_uri": {"https://app.example.com/cb"}, "app_description": {"Sync"}}))
	want(t, p, http.StatusOK, "OAuth client", `<output id="client-id">`, `<output id="client-secret">`)
	p = b.follow(b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-events"}, "jwt_secret": {"an-hmac-secret-of-at-least-32-bytes!"}}))
	want(t, p, http.StatusOK, "the kid your tokens carry")
	other := tc.signedIn()
	p = b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-payments"}})
	want(t, other.get(p.Header.Get("Location")), http.StatusGone)
	// Mistakes answer with the form again.
	want(t, b.post("/admin/developers/"+d.ID+"/keys", url.Values{}), http.StatusBadRequest, "Choose at least one policy.")
	want(t, b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-events"}, "jwt_secret": {"short"}}), http.StatusBadRequest,
		"at least 32 bytes", `id="pol4" name="policy" value="pol-events" checked`)
	want(t, b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-partner"}, "redirect_uri": {"javascript:alert(1)"}}), http.StatusBadRequest)
	want(t, b.post("/admin/developers/"+d.ID+"/keys", url.Values{"policy": {"pol-nowhere"}}), http.StatusBadRequest, "not in the catalogue")
}

func TestChangePolicyResetQuotaRevoke(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}})
	if err != nil {
		t.Fatal(err)
	}
	base := "/admin/developers/" + d.ID + "/keys/" + a.KeyHash
	b := tc.signedIn()
	want(t, b.get(base+"/policy"), http.StatusOK, "Change Policy", `id="pol0" name="policy" value="pol-payments" checked`,
		`<button type="submit" class="caps">Change key policy</button>`)
	p := b.post(base+"/policy", url.Values{"policy": {"pol-gold", "pol-reports"}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/admin/developers/"+d.ID+"?done=policy-changed#keys" {
		t.Fatalf("CHANGE KEY POLICY: %d → %q", p.Status, p.Header.Get("Location"))
	}
	want(t, b.follow(p), http.StatusOK, "Key policy changed.", "Payments Gold <code>pol-gold</code>", "Reports <code>pol-reports</code>")
	if k, _ := tc.db.FindKey(ctx, a.KeyHash); strings.Join(k.Policies, ",") != "pol-gold,pol-reports" {
		t.Errorf("policies now %v", k.Policies)
	}
	want(t, b.post(base+"/policy", url.Values{}), http.StatusBadRequest, "revoke the key")

	want(t, b.follow(b.post(base+"/reset_quota", nil)), http.StatusOK, "Quota reset.")
	if k, _ := tc.db.FindKey(ctx, a.KeyHash); k.QuotaResetAt.IsZero() {
		t.Error("quota reset not recorded")
	}

	want(t, b.get(base+"/revoke"), http.StatusOK, "Revoke key "+a.KeyHash[:8]+"… of ada@example.com?", "This cannot be undone")
	want(t, b.follow(b.post(base+"/revoke", nil)), http.StatusOK, "Key revoked: it stops working at once.", "No keys yet.")
	if _, err := tc.db.FindKey(ctx, a.KeyHash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("revoked key still found: %v", err)
	}
	want(t, b.post(base+"/revoke", nil), http.StatusNotFound)

	entries, _, _ := tc.db.FindAudit(ctx, keylens.AuditFilter{DeveloperID: d.ID, Limit: 3})
	if len(entries) != 3 || entries[0].Action != keylens.AuditKeyRevoked || entries[1].Action != keylens.AuditKeyQuotaReset ||
		entries[2].Action != keylens.AuditKeyPolicies || entries[2].Detail != "pol-payments → pol-gold, pol-reports" {
		t.Errorf("audit %+v", entries)
	}
}

func TestEditProfileStatusDelete(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	b := tc.signedIn()
	edit := "/admin/developers/" + d.ID + "/edit"
	p := b.get(edit)
	want(t, p, http.StatusOK, "Edit profile", `value="ada@example.com"`, `value="Ada Lovelace"`, `value="Core"`, "Deactivate developer", "Delete developer…")
	// A key approved after the form was opened survives the save.
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}})
	if err != nil {
		t.Fatal(err)
	}
	p = b.post(edit, url.Values{"email": {"ada.l@example.com"}, "field_name": {"Name", "Company", "Team", ""},
		"field_value": {"Ada King", "Analytical Engines", "", ""}, "password": {""}})
	want(t, b.follow(p), http.StatusOK, "Profile saved.", "ada.l@example.com", "Ada King")
	got, _ := tc.db.FindDeveloperByID(ctx, d.ID)
	if got.Email != "ada.l@example.com" || got.Fields["Name"] != "Ada King" || got.Fields["Team"] != "" || len(got.Fields) != 2 ||
		got.Keys[a.KeyHash] == nil || !keylens.CheckPassword(got.PasswordHash, "correct-horse") {
		t.Errorf("after edit: %+v", got)
	}
	want(t, b.post(edit, url.Values{"email": {"ada.l@example.com"}, "password": {"new-secret"}}), http.StatusSeeOther)
	if got, _ := tc.db.FindDeveloperByID(ctx, d.ID); !keylens.CheckPassword(got.PasswordHash, "new-secret") {
		t.Error("new password not set")
	}
	want(t, b.post(edit, url.Values{"email": {"bad"}}), http.StatusBadRequest, "Email address is not valid", `value="bad"`)

	want(t, b.follow(b.post("/admin/developers/"+d.ID+"/status", url.Values{"status": {"inactive"}})), http.StatusOK,
		"Developer deactivated", `<span class="status-inactive">Inactive</span>`)
	if got, _ := tc.db.FindDeveloperByID(ctx, d.ID); !got.Inactive {
		t.Error("not deactivated")
	}
	want(t, b.get(edit), http.StatusOK, "Activate developer")
	want(t, b.follow(b.post("/admin/developers/"+d.ID+"/status", url.Values{"status": {"active"}})), http.StatusOK, "Developer activated.")
	want(t, b.post("/admin/developers/"+d.ID+"/status", url.Values{"status": {"maybe"}}), http.StatusBadRequest)

	want(t, b.get("/admin/developers/"+d.ID+"/delete"), http.StatusOK, "Delete ada.l@example.com?", "their 1 keys")
	want(t, b.follow(b.post("/admin/developers/"+d.ID+"/delete", nil)), http.StatusOK, "Developer deleted")
	if _, err := tc.db.FindDeveloperByID(ctx, d.ID); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Error("developer not deleted")
	}
	// The deleted developer's trail stays, found by id.
	want(t, b.get("/admin/activity?developer="+d.ID), http.StatusOK, "the deleted developer", "deleted developer", "edited developer")
}

func TestKeyRequests(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	r1 := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-gold"}, Fields: map[string]any{"Use case": "invoicing"}}
	r2 := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-reports"}}
	r3 := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-events"}} // jwt without a secret
	for _, r := range []*keylens.KeyRequest{r1, r2, r3} {
		if err := tc.db.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	b := tc.signedIn()
	p := b.get("/admin/requests")
	want(t, p, http.StatusOK, "3 pending, oldest first", "Payments Gold <code>pol-gold</code>", "<strong>Use case</strong>: invoicing",
		"ada@example.com", "None approved yet.")
	if strings.Index(p.Body, "pol-gold") > strings.Index(p.Body, "pol-reports") {
		t.Error("pending requests are not oldest first")
	}
	p = b.post("/admin/requests/"+r1.ID+"/approve", nil)
	if !issuedLink.MatchString(p.Header.Get("Location")) {
		t.Fatalf("approve: %d → %q\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	p = b.follow(p)
	want(t, p, http.StatusOK, "They will not be shown again", "ada@example.com", "pol-gold")
	raw := regexp.MustCompile(`<output id="raw-key">([^<]+)</output>`).FindStringSubmatch(p.Body)[1]
	if k, err := tc.db.FindKey(ctx, keylens.KeyHashOf(raw)); err != nil || k.RequestID != r1.ID {
		t.Errorf("approved key %+v, %v", k, err)
	}
	want(t, b.post("/admin/requests/"+r1.ID+"/approve", nil), http.StatusConflict, "already approved")
	want(t, b.post("/admin/requests/"+r3.ID+"/approve", nil), http.StatusBadRequest, "jwt_secret")
	want(t, b.post("/admin/requests/"+r1.ID+"/reject", nil), http.StatusConflict, "approved already")
	want(t, b.follow(b.post("/admin/requests/"+r2.ID+"/reject", nil)), http.StatusOK, "Key request rejected.", "1 pending", "1 approved, newest first")
	if _, err := tc.db.FindKeyRequestByID(ctx, r2.ID); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Error("rejected request still there")
	}
	want(t, b.post("/admin/requests/000000000000000000000000/approve", nil), http.StatusNotFound)
}

func TestCatalogueAndConfiguration(t *testing.T) {
	tc := newTestConsole(t)
	tc.fixture()
	ctx := context.Background()
	cat, _ := tc.db.Catalogue(ctx)
	cat.APIs[0].Documentation, cat.APIs[0].Config = "https://docs.example.com", []byte(`{"require_key_approval":true}`)
	if err := tc.db.PutCatalogue(ctx, cat); err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	p := b.get("/admin/catalogue")
	want(t, p, http.StatusOK, "5 entries", "<td>Payments</td>", "<code>pol-payments</code>", "Add entry")
	version := regexp.MustCompile(`name="version" value="([0-9a-f]+)"`).FindStringSubmatch(p.Body)[1]
	want(t, b.get("/admin/catalogue/edit?policy=pol-payments"), http.StatusOK, `value="Payments"`, `<option value="authToken" selected>`)
	want(t, b.get("/admin/catalogue/edit?policy=nope"), http.StatusNotFound)
	p = b.post("/admin/catalogue", url.Values{"original": {"pol-payments"}, "version": {version}, "name": {"Payments API"},
		"policy_id": {"pol-payments"}, "api_id": {"payments"}, "auth_type": {"authToken"}, "short_description": {"Take payments"}})
	want(t, b.follow(p), http.StatusOK, "Catalogue entry saved.", "Payments API", "Take payments")
	cat, _ = tc.db.Catalogue(ctx)
	if e := cat.Entry("pol-payments"); e.Name != "Payments API" || e.Show || e.Documentation != "https://docs.example.com" ||
		string(e.Config) != `{"require_key_approval":true}` || len(cat.APIs) != 5 {
		t.Errorf("edited entry %+v", e)
	}
	// The old version is stale now: refused, nothing saved.
	want(t, b.post("/admin/catalogue", url.Values{"version": {version}, "name": {"New"}, "policy_id": {"pol-new"}, "auth_type": {"basic"}}),
		http.StatusConflict, "The catalogue changed since this form was opened")
	version = catalogueVersion(cat)
	want(t, b.follow(b.post("/admin/catalogue", url.Values{"version": {version}, "name": {"New"}, "policy_id": {"pol-new"}, "auth_type": {"basic"}, "show": {"on"}})),
		http.StatusOK, "<code>pol-new</code>")
	cat, _ = tc.db.Catalogue(ctx)
	if e := cat.Entry("pol-new"); e == nil || e.AuthType != "basic" || !e.Show {
		t.Errorf("added entry %+v", e)
	}
	want(t, b.post("/admin/catalogue", url.Values{"version": {catalogueVersion(cat)}, "name": {"Dup"}, "policy_id": {"pol-new"}, "auth_type": {"basic"}}),
		http.StatusBadRequest, "published twice")
	want(t, b.post("/admin/catalogue", url.Values{"version": {catalogueVersion(cat)}, "name": {"Bad"}, "policy_id": {"pol-bad"}, "auth_type": {"kerberos"}}),
		http.StatusBadRequest, "auth_type")
	want(t, b.follow(b.post("/admin/catalogue/remove", url.Values{"policy": {"pol-new"}, "version": {catalogueVersion(cat)}})), http.StatusOK, "Catalogue entry removed.")
	if cat, _ := tc.db.Catalogue(ctx); cat.Entry("pol-new") != nil {
		t.Error("entry not removed")
	}

	want(t, b.get("/admin/configuration"), http.StatusOK, "Require key approval", ">Use case</textarea>", "Name\nCompany</textarea>")
	cfg, _ := tc.db.PortalConfig(ctx)
	cfg.Other = map[string]json.RawMessage{"disable_signup": json.RawMessage("true")}
	if err := tc.db.PutPortalConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p = b.post("/admin/configuration", url.Values{"require_key_approval": {"on"}, "key_request_fields": {"Use case\r\n\r\nExpected volume\nUse case"},
		"signup_fields": {"Name"}})
	want(t, b.follow(p), http.StatusOK, "Configuration saved.")
	cfg, _ = tc.db.PortalConfig(ctx)
	if !cfg.RequireKeyApproval || strings.Join(cfg.KeyRequestFields, "|") != "Use case|Expected volume" || strings.Join(cfg.SignupFields, "|") != "Name" ||
		string(cfg.Other["disable_signup"]) != "true" {
		t.Errorf("configuration %+v", cfg)
	}
	want(t, b.post("/admin/configuration", url.Values{"key_request_fields": {"Use case\nUse_case"}}), http.StatusBadRequest, "same upstream header")
}

func TestAdmins(t *testing.T) {
	tc := newTestConsole(t)
	ctx := context.Background()
	b := tc.signedIn()
	want(t, b.get("/admin/admins"), http.StatusOK, "No admin accounts yet", "keylens admin add EMAIL")
	add := url.Values{"email": {"grace@example.com"}, "password": {"long-enough-password"}, "password_again": {"long-enough-password"}}
	want(t, b.follow(b.post("/admin/admins", add)), http.StatusOK, "Admin added.", "grace@example.com", "Enabled")
	want(t, b.post("/admin/admins", add), http.StatusConflict, "already exists")
	want(t, b.post("/admin/admins", url.Values{"email": {"h@example.com"}, "password": {"short"}, "password_again": {"short"}}), http.StatusBadRequest, "at least 12")
	want(t, b.post("/admin/admins", url.Values{"email": {"h@example.com"}, "password": {"long-enough-password"}, "password_again": {"other-long-password"}}),
		http.StatusBadRequest, "The two passwords differ.")

	grace := tc.browser()
	grace.get("/admin/signin")
	grace.follow(grace.post("/admin/signin", url.Values{"email": {"grace@example.com"}, "password": {"long-enough-password"}}))
	want(t, grace.get("/admin/admins"), http.StatusOK, "grace@example.com <span class=\"hint\">(you)</span>")
	all, _ := tc.db.FindAdmins(ctx)
	id := all[0].ID
	// Grace cannot lock herself out.
	want(t, grace.post("/admin/admins/"+id+"/status", url.Values{"status": {"disabled"}}), http.StatusBadRequest, "your own account")
	want(t, grace.get("/admin/admins/"+id+"/remove"), http.StatusBadRequest)

	// Disabled by the admin key: her session ends at once, and she cannot sign in.
	want(t, b.follow(b.post("/admin/admins/"+id+"/status", url.Values{"status": {"disabled"}})), http.StatusOK, "Admin disabled", "Disabled")
	if p := grace.get("/admin/developers"); p.Status != http.StatusSeeOther {
		t.Errorf("a disabled admin's session still works: %d", p.Status)
	}
	grace.get("/admin/signin")
	want(t, grace.post("/admin/signin", url.Values{"email": {"grace@example.com"}, "password": {"long-enough-password"}}), http.StatusUnauthorized)
	want(t, b.follow(b.post("/admin/admins/"+id+"/status", url.Values{"status": {"enabled"}})), http.StatusOK, "Admin enabled.")
	grace.get("/admin/signin")
	want(t, grace.post("/admin/signin", url.Values{"email": {"grace@example.com"}, "password": {"long-enough-password"}}), http.StatusSeeOther)

	want(t, b.get("/admin/admins/"+id+"/remove"), http.StatusOK, "Remove the admin grace@example.com?")
	want(t, b.follow(b.post("/admin/admins/"+id+"/remove", nil)), http.StatusOK, "Admin removed.", "No admin accounts yet")
	if p := grace.get("/admin/developers"); p.Status != http.StatusSeeOther {
		t.Errorf("a removed admin's session still works: %d", p.Status)
	}
	want(t, b.post("/admin/admins/"+id+"/remove", nil), http.StatusNotFound)
}

func TestActivity(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	if err := tc.db.CreateAdmin(ctx, &keylens.Admin{Email: "root@example.com", Password: "long-enough-password"}); err != nil {
		t.Fatal(err)
	}
	b := tc.browser()
	b.get("/admin/signin")
	b.follow(b.post("/admin/signin", url.Values{"email": {"root@example.com"}, "password": {"long-enough-password"}}))
	b.post("/admin/developers/"+d.ID+"/status", url.Values{"status": {"inactive"}})
	other := &keylens.Developer{Email: "other@example.com"}
	if err := tc.db.CreateDeveloper(keylens.WithActor(ctx, keylens.Actor{Name: "admin key", Via: "api"}), other); err != nil {
		t.Fatal(err)
	}
	p := b.get("/admin/activity")
	want(t, p, http.StatusOK, `<span class="nowrap">root@example.com</span><br><span class="hint">via console</span>`, "edited developer", "deactivated",
		`<span class="nowrap">admin key</span><br><span class="hint">via api</span>`, "added developer", "other@example.com", "added admin")
	if strings.Index(p.Body, "other@example.com") > strings.Index(p.Body, "deactivated") {
		t.Error("activity is not newest first")
	}
	p = b.get("/admin/activity?developer=ADA@example.com")
	want(t, p, http.StatusOK, "Showing what concerns <a href=\"/admin/developers/"+d.ID+"\">ada@example.com</a>", "deactivated")
	if strings.Contains(p.Body, "other@example.com") || strings.Contains(p.Body, "added admin") {
		t.Error("the developer filter lets others through")
	}
	want(t, b.get("/admin/activity?developer=nobody@example.com"), http.StatusOK, "No developer has that email")
}

// TestConsoleRotatesAKey: the key's Options menu rotates it: the new
// credentials are shown once with the old key's end, the profile lists
// both and says when the old one stops, and a Basic key gets a new
// username and password.
func TestConsoleRotatesAKey(t *testing.T) {
	tc := newTestConsole(t)
	d := tc.fixture()
	ctx := context.Background()
	a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-reports"}})
	if err != nil {
		t.Fatal(err)
	}
	b := tc.signedIn()
	base := "/admin/developers/" + d.ID + "/keys/" + a.KeyHash
	want(t, b.get("/admin/developers/"+d.ID), http.StatusOK, `href="`+base+`/rotate">Rotate…</a>`)
	want(t, b.get(base+"/rotate"), http.StatusOK, "Keep the old key working for", `<option value="0s">Stop the old key at once</option>`)
	want(t, b.post(base+"/rotate", url.Values{"grace": {"999h"}}), http.StatusBadRequest, "Choose how long")
	p := b.post(base+"/rotate", url.Values{"grace": {"168h0m0s"}})
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/admin/issued/") {
		t.Fatalf("rotate: %d %s\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	p = b.get(p.Header.Get("Location"))
	want(t, p, http.StatusOK, "Basic credentials", "It replaces key", a.KeyHash[:8], "keeps working until")
	keys, _ := tc.db.FindDeveloperKeys(ctx, d.ID)
	if len(keys) != 2 || keys[0].Hash != a.KeyHash || keys[0].ReplacedBy != keys[1].Hash || keys[1].BasicUsername == a.RawKey {
		t.Fatalf("keys after the rotation: %+v", keys)
	}
	p = b.get("/admin/developers/" + d.ID)
	want(t, p, http.StatusOK, "stops working in 7 days", keys[1].Hash[:8])
	if strings.Contains(p.Body, `href="`+base+`/rotate"`) {
		t.Error("a key in its grace offers rotation")
	}
	want(t, b.get(base), http.StatusOK, "Stops working in 7 days")
	want(t, b.get("/admin/developers/"+d.ID+"/keys/"+keys[1].Hash), http.StatusOK, "Replaces", a.KeyHash[:8], "which stops working in 7 days")
	want(t, b.post(base+"/rotate", url.Values{"grace": {"1h0m0s"}}), http.StatusConflict, "already replaced")
}
