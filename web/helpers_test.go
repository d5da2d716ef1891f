package web

import (
	"context"
	"crypto/sha256"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/sqlstore"
)

const testAdminKey = "console-test-admin-key-0123456789"

// testConsole is the console over a real SQLite file, in process, with a
// clock the test moves.
type testConsole struct {
	t   testing.TB
	db  *sqlstore.DB
	c   *Console
	h   http.Handler
	mu  sync.Mutex
	now time.Time
}

func newTestConsole(t testing.TB, opts ...func(*ConsoleConfig)) *testConsole {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tc := &testConsole{t: t, db: db, now: time.Now().UTC().Truncate(time.Second)}
	cfg := ConsoleConfig{
		SiteConfig: SiteConfig{Developers: db, Catalogue: db, Keys: db, Hits: db, Sessions: db,
			SignIn: guard.NewSignIn(guard.Policy{Window: 15 * time.Minute, PairMax: 5, ClientMax: 20}),
			Now:    tc.clock, MaxRotationGrace: keylens.DefaultMaxRotationGrace},
		Admins: db, Audit: db, AdminKeyHash: sha256.Sum256([]byte(testAdminKey)), Gravatar: true}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := NewConsole(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc.c, tc.h = c, c.Handler()
	return tc
}

func (tc *testConsole) clock() time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.now
}

func (tc *testConsole) advance(d time.Duration) {
	tc.mu.Lock()
	tc.now = tc.now.Add(d)
	tc.mu.Unlock()
}

// browser is one browser: its own cookies, and the CSRF token of the last
// page it read.
type browser struct {
	tc      *testConsole
	h       http.Handler // the portal's; nil: the console's (tc.h)
	origin  string       // the site's origin: requests go to it
	cookies map[string]string
	csrf    string
	addr    string // RemoteAddr
}

func (tc *testConsole) browser() *browser {
	return &browser{tc: tc, origin: "http://console.test", cookies: map[string]string{}, addr: "192.0.2.10:5555"}
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values) page {
	b.tc.t.Helper()
	path, _, _ = strings.Cut(path, "#") // a browser never sends the fragment
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, b.origin+path, body)
	req.RemoteAddr = b.addr
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.origin)
	}
	for n, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	rec := httptest.NewRecorder()
	h := b.h
	if h == nil {
		h = b.tc.h
	}
	h.ServeHTTP(rec, req)
	res := rec.Result()
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck.Value
		}
	}
	p := page{Status: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
	// The last token: a page shown before sign-in to a signed-in
	// visitor has the session's in its header and its own in its form.
	if m := csrfField.FindAllStringSubmatch(p.Body, -1); m != nil {
		b.csrf = html.UnescapeString(m[len(m)-1][1])
	}
	return p
}

func (b *browser) get(path string) page {
	b.tc.t.Helper()
	return b.do("GET", path, nil)
}

// post sends a form with the browser's current CSRF token.
func (b *browser) post(path string, form url.Values) page {
	b.tc.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, set := form["csrf"]; !set {
		form.Set("csrf", b.csrf)
	}
	return b.do("POST", path, form)
}

// follow GETs the page a 303 points at.
func (b *browser) follow(p page) page {
	b.tc.t.Helper()
	if p.Status != http.StatusSeeOther {
		b.tc.t.Fatalf("status %d, want 303:\n%s", p.Status, text(p.Body))
	}
	return b.get(p.Header.Get("Location"))
}

// signIn signs the browser in with the admin key.
func (b *browser) signIn() {
	b.tc.t.Helper()
	b.get("/admin/signin")
	p := b.post("/admin/signin/key", url.Values{"key": {testAdminKey}})
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/admin/developers" {
		b.tc.t.Fatalf("sign-in with the admin key: %d %s\n%s", p.Status, p.Header.Get("Location"), text(p.Body))
	}
	b.get("/admin/developers") // its CSRF token
}

func (tc *testConsole) signedIn() *browser {
	b := tc.browser()
	b.signIn()
	return b
}

// want fails unless the page has status and contains every string.
func want(t *testing.T, p page, status int, contains ...string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("status %d, want %d:\n%s", p.Status, status, text(p.Body))
	}
	for _, s := range contains {
		if !strings.Contains(p.Body, s) {
			t.Errorf("page lacks %q:\n%s", s, text(p.Body))
		}
	}
}

var tags = regexp.MustCompile(`(?s)<[^>]*>|\s+`)

// text is a page without its markup, for failure messages.
func text(body string) string {
	s := tags.ReplaceAllString(body, " ")
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

// fixture creates what pages show: a catalogue, a configuration and a
// developer, made through the store (as the REST API would).
func (tc *testConsole) fixture() *keylens.Developer {
	tc.t.Helper()
	ctx := context.Background()
	if err := tc.db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
		{Name: "Payments", PolicyID: "pol-payments", APIID: "payments", AuthType: keylens.AuthToken, Show: true},
		{Name: "Payments Gold", PolicyID: "pol-gold", APIID: "payments", AuthType: keylens.AuthToken},
		{Name: "Reports", PolicyID: "pol-reports", APIID: "reports", AuthType: keylens.AuthBasic},
		{Name: "Partner", PolicyID: "pol-partner", APIID: "partner", AuthType: keylens.AuthOAuth},
		{Name: "Events", PolicyID: "pol-events", APIID: "events", AuthType: keylens.AuthJWT},
	}}); err != nil {
		tc.t.Fatal(err)
	}
	if err := tc.db.PutPortalConfig(ctx, &keylens.PortalConfig{SignupFields: []string{"Name", "Company"},
		KeyRequestFields: []string{"Use case"}}); err != nil {
		tc.t.Fatal(err)
	}
	d := &keylens.Developer{Email: "ada@example.com", Password: "correct-horse",
		Fields: map[string]string{"Name": "Ada Lovelace", "Company": "Analytical Engines", "Team": "Core"}}
	if err := tc.db.CreateDeveloper(ctx, d); err != nil {
		tc.t.Fatal(err)
	}
	return d
}

// httptestRequest is a form POST from browser b, cookies and all, for tests
// that look at the raw response.
func httptestRequest(method, path string, form url.Values, b *browser) *http.Request {
	req := httptest.NewRequest(method, "http://console.test"+path, strings.NewReader(form.Encode()))
	req.RemoteAddr = b.addr
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for n, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	return req
}

// concurrentPosts posts form to path from b n times at once, and counts
// the answers' statuses.
func concurrentPosts(b *browser, path string, form url.Values, n int) map[int]int {
	h := b.h
	if h == nil {
		h = b.tc.h
	}
	codes := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		req := httptest.NewRequest("POST", b.origin+path, strings.NewReader(form.Encode()))
		req.RemoteAddr = b.addr
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.origin)
		for n, v := range b.cookies {
			req.AddCookie(&http.Cookie{Name: n, Value: v})
		}
		wg.Go(func() {
			<-start
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			codes <- rec.Code
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	return count
}

func serve(tc *testConsole, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	tc.h.ServeHTTP(rec, req)
	return rec
}
