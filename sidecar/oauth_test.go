package sidecar_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sidecar"
)

// oauthFixture is a sidecar serving a real SQLite store over loopback,
// with one developer holding two OAuth clients.
type oauthFixture struct {
	*fixture
	url     string
	clients [2]keylens.ClientCredentials
}

func newOAuthFixture(t *testing.T) *oauthFixture {
	t.Helper()
	f := newFixture(t)
	of := &oauthFixture{fixture: f}
	for i := range of.clients {
		a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-oauth"})
		of.clients[i] = keylens.ClientCredentials{ID: a.OAuthClient.ClientID, Secret: a.OAuthClient.Secret}
	}
	of.url = "http://" + serveOnLoopback(t, sidecar.Config{Resolver: f.r, Tokens: f.db, TokenTTL: 90 * time.Second}, nil)
	return of
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// post sends a form (or any body with contentType) with an optional
// Authorization.
func (f *oauthFixture) post(t *testing.T, path, contentType, body, auth string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", f.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

const form = "application/x-www-form-urlencoded"

func basicAuth(c keylens.ClientCredentials) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":"+c.Secret))
}

// token gets a token for c with client_secret_basic.
func (f *oauthFixture) token(t *testing.T, c keylens.ClientCredentials) string {
	t.Helper()
	a := f.post(t, "/oauth/token", form, "grant_type=client_credentials", basicAuth(c))
	tok, _ := a.body["access_token"].(string)
	if a.status != 200 || tok == "" {
		t.Fatalf("token: %d %s", a.status, a.raw)
	}
	return tok
}

func (f *oauthFixture) get(t *testing.T, path, auth string) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", f.url+path, nil)
	req.Header.Set("Authorization", auth)
	return do(t, req)
}

// A token from either client authentication method resolves on every
// credential path to its client's developer.
func TestOAuthTokenResolvesEverywhere(t *testing.T) {
	f := newOAuthFixture(t)
	c := f.clients[0]
	post := f.post(t, "/oauth/token", form, url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID},
		"client_secret": {c.Secret}, "scope": {"anything"}}.Encode(), "")
	if post.status != 200 {
		t.Fatalf("client_secret_post: %d %s", post.status, post.raw)
	}
	// The secret form-encoded in Basic, as RFC 6749 §2.3.1 has it.
	encoded := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ID)+":"+url.QueryEscape(c.Secret)))
	basic := f.post(t, "/oauth/token", form, "grant_type=client_credentials", encoded)
	if basic.status != 200 {
		t.Fatalf("client_secret_basic: %d %s", basic.status, basic.raw)
	}
	for _, a := range []answer{post, basic} {
		if a.body["token_type"] != "bearer" || a.body["expires_in"] != 90.0 || a.body["scope"] != "pol-oauth" ||
			a.header.Get("Cache-Control") != "no-store" || a.header.Get("Pragma") != "no-cache" {
			t.Errorf("answer %d %v %s", a.status, a.header, a.raw)
		}
	}
	tok := post.body["access_token"].(string)
	if tok == basic.body["access_token"] || !keylens.IsAccessToken([]byte(tok)) {
		t.Fatalf("tokens %q, %q", tok, basic.body["access_token"])
	}
	hash := keylens.TokenHash(tok)
	start := time.Now().Unix()

	auth := f.get(t, "/auth", "Bearer "+tok)
	if auth.status != 200 || auth.header.Get("X-Developer-Id") != f.dev.ID || auth.header.Get("X-Key-Id") != hash ||
		auth.header.Get("X-Developer-Policies") != "pol-oauth" {
		t.Errorf("/auth: %d %v", auth.status, auth.header)
	}
	dev := f.get(t, "/developer", tok)
	if dev.status != 200 || dev.body["developer_id"] != f.dev.ID || dev.body["client_id"] != c.ID || dev.body["key_id"] != hash {
		t.Errorf("/developer: %d %s", dev.status, dev.raw)
	}
	in := f.post(t, "/introspect", form, "token="+url.QueryEscape(tok), "")
	iat, _ := in.body["iat"].(float64)
	exp, _ := in.body["exp"].(float64)
	if in.status != 200 || in.body["active"] != true || in.body["client_id"] != c.ID || in.body["scope"] != "pol-oauth" ||
		in.body["sub"] != f.dev.ID || int64(iat) < start-2 || int64(iat) > start+2 || exp-iat != 90 {
		t.Errorf("/introspect: %d %s", in.status, in.raw)
	}
	// A token's hash is not a credential, nor is a token altered.
	altered := tok[:len(tok)-1] + "A"
	if altered == tok {
		altered = tok[:len(tok)-1] + "B"
	}
	for _, bad := range []string{hash, altered, tok + "x"} {
		if a := f.get(t, "/auth", bad); a.status != 401 {
			t.Errorf("%q: %d", bad, a.status)
		}
	}
}

func TestOAuthTokenErrors(t *testing.T) {
	f := newOAuthFixture(t)
	c := f.clients[0]
	wrong := keylens.ClientCredentials{ID: c.ID, Secret: f.clients[1].Secret}
	grant := "grant_type=client_credentials"
	for _, tt := range []struct {
		name, ctype, body, auth string
		status                  int
		code                    string
	}{
		{"wrong secret", form, grant, basicAuth(wrong), 401, "invalid_client"},
		{"unknown client", form, grant, basicAuth(keylens.ClientCredentials{ID: "nobody", Secret: c.Secret}), 401, "invalid_client"},
		{"wrong secret posted", form, grant + "&client_id=" + c.ID + "&client_secret=x", "", 401, "invalid_client"},
		{"no client", form, grant, "", 401, "invalid_client"},
		{"id without secret", form, grant + "&client_id=" + c.ID, "", 401, "invalid_client"},
		{"Bearer, not Basic", form, grant, "Bearer " + c.Secret, 401, "invalid_client"},
		{"Basic without colon", form, grant, "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID)), 401, "invalid_client"},
		{"two methods", form, grant + "&client_secret=" + url.QueryEscape(c.Secret), basicAuth(c), 400, "invalid_request"},
		{"another client's id in the form", form, grant + "&client_id=other", basicAuth(c), 400, "invalid_request"},
		{"no grant", form, "", basicAuth(c), 400, "invalid_request"},
		{"password grant", form, "grant_type=password&username=a&password=b", basicAuth(c), 400, "unsupported_grant_type"},
		{"two grants", form, grant + "&" + grant, basicAuth(c), 400, "invalid_request"},
		{"JSON", "application/json", `{"grant_type":"client_credentials"}`, basicAuth(c), 400, "invalid_request"},
		{"bad escape", form, "grant_type=%zz", basicAuth(c), 400, "invalid_request"},
	} {
		a := f.post(t, "/oauth/token", tt.ctype, tt.body, tt.auth)
		if a.status != tt.status || a.body["error"] != tt.code || a.body["error_description"] == "" || a.body["access_token"] != nil {
			t.Errorf("%s: %d %s, want %d %s", tt.name, a.status, a.raw, tt.status, tt.code)
		}
		if (a.status == 401) != (a.header.Get("WWW-Authenticate") == `Basic realm="keylens"`) {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, a.header.Get("WWW-Authenticate"))
		}
	}
	if a := f.get(t, "/oauth/token", basicAuth(c)); a.status != 405 || a.header.Get("Allow") != "POST" {
		t.Errorf("GET: %d", a.status)
	}
	// An inactive developer's client gets no token.
	ctx := context.Background()
	d, _ := f.db.FindDeveloperByID(ctx, f.dev.ID)
	d.Inactive = true
	if err := f.db.UpdateDeveloper(ctx, d.ID, d); err != nil {
		t.Fatal(err)
	}
	if a := f.post(t, "/oauth/token", form, grant, basicAuth(c)); a.status != 400 || a.body["error"] != "unauthorized_client" {
		t.Errorf("inactive developer: %d %s", a.status, a.raw)
	}
	// Without a token service the routes are off.
	srv, _ := sidecar.NewServer(sidecar.Config{Resolver: f.r})
	var rc fasthttp.RequestCtx
	rc.Request.Header.SetMethod("POST")
	rc.Request.SetRequestURI("/oauth/token")
	srv.Handler()(&rc)
	if rc.Response.StatusCode() != 404 {
		t.Errorf("without Tokens: %d", rc.Response.StatusCode())
	}
}

// RFC 7009 on the sidecar: the client revokes its own tokens only; the
// sidecar that revoked refuses the token at once.
func TestOAuthRevoke(t *testing.T) {
	f := newOAuthFixture(t)
	mine, theirs := f.token(t, f.clients[0]), f.token(t, f.clients[1])
	for _, tok := range []string{mine, theirs} {
		if a := f.get(t, "/auth", tok); a.status != 200 {
			t.Fatalf("before: %d", a.status)
		}
	}
	wrong := keylens.ClientCredentials{ID: f.clients[0].ID, Secret: "x"}
	if a := f.post(t, "/oauth/revoke", form, "token="+mine, basicAuth(wrong)); a.status != 401 || a.body["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %s", a.status, a.raw)
	}
	if a := f.post(t, "/oauth/revoke", form, "token_type_hint=access_token", basicAuth(f.clients[0])); a.status != 400 || a.body["error"] != "invalid_request" {
		t.Errorf("no token: %d %s", a.status, a.raw)
	}
	for _, tok := range []string{theirs, "not-a-token", keylens.TokenHash(mine)} {
		if a := f.post(t, "/oauth/revoke", form, "token="+tok, basicAuth(f.clients[0])); a.status != 200 {
			t.Errorf("revoking %q: %d %s", tok, a.status, a.raw)
		}
	}
	if a := f.get(t, "/auth", theirs); a.status != 200 {
		t.Error("a client revoked another's token")
	}
	if a := f.get(t, "/auth", mine); a.status != 200 {
		t.Error("revoking by hash revoked")
	}
	if a := f.post(t, "/oauth/revoke", form, "token="+mine+"&token_type_hint=access_token", basicAuth(f.clients[0])); a.status != 200 || a.raw != "" {
		t.Errorf("revoke: %d %q", a.status, a.raw)
	}
	if a := f.get(t, "/auth", mine); a.status != 401 {
		t.Errorf("a revoked token: %d", a.status)
	}
	if a := f.post(t, "/introspect", form, "token="+mine, ""); a.raw != `{"active":false}` {
		t.Errorf("introspecting a revoked token: %s", a.raw)
	}
}

// A token stops resolving when it expires, cached or not, whichever clock
// (the store's or the sidecar's) says so first.
func TestOAuthTokenExpires(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	// Issued as if 1 h 88 s ago with a 90 s life: 2 s left.
	f.db.Now = func() time.Time { return time.Now().Add(-time.Hour - 88*time.Second) }
	tok, hash := keylens.NewAccessToken()
	if _, err := f.db.IssueToken(ctx, f.clients[0], hash, time.Hour+90*time.Second); err != nil {
		t.Fatal(err)
	}
	f.db.Now = time.Now
	if _, err := f.r.Resolve(ctx, []byte(tok)); err != nil {
		t.Fatalf("a live token: %v", err)
	}
	waitForWithin(t, "expiry", 5*time.Second, func() bool {
		_, err := f.r.Resolve(ctx, []byte(tok))
		return errors.Is(err, sidecar.ErrUnknown)
	})
	// Expired by the sidecar's clock while the store's lags behind.
	f.db.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	tok2, hash2 := keylens.NewAccessToken()
	if _, err := f.db.IssueToken(ctx, f.clients[0], hash2, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Resolve(ctx, []byte(tok2)); !errors.Is(err, sidecar.ErrUnknown) {
		t.Errorf("a token expired by the sidecar's clock: %v", err)
	}
}

func waitForWithin(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if cond() {
			t.Logf("%s took effect after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not take effect within %v", what, limit)
}

// FuzzOAuthForm: whatever the form and Authorization, the parser answers
// a request or an RFC 6749 error, never panics, and never hands a client
// a credential it did not send.
func FuzzOAuthForm(f *testing.F) {
	for _, s := range [][2]string{
		{"grant_type=client_credentials", "Basic YWJjOmRlZg=="},
		{"grant_type=client_credentials&client_id=a&client_secret=b", ""},
		{"grant_type=client_credentials&grant_type=password", ""},
		{"token=klat_x&token_type_hint=access_token", "Basic YTpi"},
		{"%zz=1&;&&=", "Basic %%%"},
		{"client_id=a%00&client_secret=%FF", "basic  YTolM0E="},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, body, auth string, revoke bool) {
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.Header.SetContentType(form)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.SetBodyString(body)
		id, secret, grant, token, status, code := sidecar.ParseOAuthRequest(&req, revoke)
		switch {
		case status == 0:
			if id == "" || (!revoke && grant != "client_credentials") || (revoke && token == "") {
				t.Fatalf("accepted %q %q: %q %q %q %q", body, auth, id, secret, grant, token)
			}
			if !strings.Contains(body, url.QueryEscape(id)) && !strings.Contains(body, id) && auth == "" {
				t.Fatalf("a client id from nowhere: %q", id)
			}
		case status == 400 && (code == "invalid_request" || code == "unsupported_grant_type"):
		case status == 401 && code == "invalid_client":
		default:
			t.Fatalf("%q %q: %d %q", body, auth, status, code)
		}
	})
}

// A cached token is answered as a cached key is: without allocating.
func TestCachedTokenAllocatesNothing(t *testing.T) {
	f := newOAuthFixture(t)
	tok := []byte("Bearer " + f.token(t, f.clients[0]))
	if _, err := f.r.Resolve(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = f.r.Resolve(context.Background(), tok) }); n != 0 {
		t.Errorf("a cached token allocates %.1f times", n)
	}
}
