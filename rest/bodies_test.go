package rest_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sqlstore"
)

// call sends a request with the admin key to h and returns the answer.
func call(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "admin")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestStrictBodies: null, a misspelled or unknown top-level member, a
// missing required member and invalid UTF-8 answer 400 naming the problem,
// and change nothing stored.
func TestStrictBodies(t *testing.T) {
	h := newTestServer(t)
	if rec := call(h, "PUT", "/api/portal/catalogue", `{"apis":[{"name":"Payments","policy_id":"pol-pay","api_id":"api-pay"}]}`); rec.Code != 200 {
		t.Fatalf("a good catalogue: %d %s", rec.Code, rec.Body)
	}
	before := call(h, "GET", "/api/portal/catalogue", "").Body.String()
	for _, c := range []struct {
		name, method, path, body, want string
	}{
		{"catalogue null", "PUT", "/api/portal/catalogue", `null`, "not null"},
		{"catalogue misspelled", "PUT", "/api/portal/catalogue", `{"apiz":[]}`, "apis is required"},
		{"catalogue apis null", "PUT", "/api/portal/catalogue", `{"apis":null}`, "apis is required"},
		{"catalogue unknown member", "POST", "/api/portal/catalogue", `{"apis":[],"extra":1}`, "unknown member extra"},
		{"catalogue an array", "PUT", "/api/portal/catalogue", `[]`, "malformed"},
		{"developer misspelled", "POST", "/api/portal/developers", `{"emial":"a@example.com"}`, "unknown member emial"},
		{"developer null", "POST", "/api/portal/developers", `null`, "not null"},
		{"developer invalid UTF-8", "POST", "/api/portal/developers", "{\"email\":\"a@example.com\",\"fields\":{\"x\":\"\xff\"}}", "UTF-8"},
		{"configuration invalid UTF-8", "PUT", "/api/portal/configuration", "{\"x\":\"\xc3\x28\"}", "UTF-8"},
		{"configuration null", "PUT", "/api/portal/configuration", `null`, "not null"},
		{"key request misspelled", "POST", "/api/portal/requests", `{"by_usr":"x","for_plan":"pol-pay"}`, "unknown member by_usr"},
		{"verify_credentials extra", "POST", "/api/portal/developers/verify_credentials", `{"username":"a","password":"b","otp":"1"}`, "unknown member otp"},
		{"hits without batches", "POST", "/api/keylens/hits", `{}`, "batches"},
		{"hits misspelled", "POST", "/api/keylens/hits", `{"batchs":[]}`, "unknown member batchs"},
	} {
		rec := call(h, c.method, c.path, c.body)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), c.want) || !strings.HasPrefix(rec.Body.String(), `{"Status":"Error"`) {
			t.Errorf("%s: %d %s, want 400 naming %q", c.name, rec.Code, rec.Body, c.want)
		}
	}
	if after := call(h, "GET", "/api/portal/catalogue", "").Body.String(); after != before {
		t.Errorf("a refused body changed the catalogue:\n%s\n%s", before, after)
	}
	if n := call(h, "GET", "/api/portal/developers", "").Body.String(); !strings.Contains(n, `"Data":[]`) {
		t.Errorf("a refused body stored a developer: %s", n)
	}
	// The configuration keeps members it does not know, as Tyk's does;
	// its id is the store's.
	if rec := call(h, "PUT", "/api/portal/configuration", `{"id":"client-chosen","require_key_approval":true,"mail_options":{"x":1}}`); rec.Code != 200 {
		t.Fatalf("configuration: %d %s", rec.Code, rec.Body)
	}
	got := call(h, "GET", "/api/portal/configuration", "").Body.String()
	if strings.Contains(got, "client-chosen") || !strings.Contains(got, `"mail_options":{"x":1}`) {
		t.Errorf("configuration: %s", got)
	}
}

// TestListParameters: a page past anything is empty (not page 1 again);
// control characters in q are refused; % and _ in q match themselves.
func TestListParameters(t *testing.T) {
	h := newTestServer(t)
	for _, e := range []string{"a_b@example.com", "axb@example.com", "c%d@example.com"} {
		if rec := call(h, "POST", "/api/portal/developers", `{"email":"`+e+`"}`); rec.Code != 200 {
			t.Fatalf("create %s: %d %s", e, rec.Code, rec.Body)
		}
	}
	for _, c := range []struct{ path, want string }{
		{"/api/portal/developers?p=9223372036854775807", `"Data":[]`},
		{"/api/portal/developers?p=922337203685477580", `"Data":[]`},
		{"/api/portal/requests?p=9223372036854775807", `"Data":[]`},
		{"/api/portal/developers?q=a_b", `"a_b@example.com"`},
		{"/api/portal/developers?q=c%25d", `"c%d@example.com"`},
	} {
		if rec := call(h, "GET", c.path, ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), c.want) {
			t.Errorf("GET %s: %d %s, want %s", c.path, rec.Code, rec.Body, c.want)
		}
	}
	if rec := call(h, "GET", "/api/portal/developers?q=a_b", ""); strings.Contains(rec.Body.String(), "axb@") {
		t.Errorf("_ in q matched any character: %s", rec.Body)
	}
	for _, q := range []string{"%00", "a%0Ab", "%7F"} {
		if rec := call(h, "GET", "/api/portal/developers?q="+q, ""); rec.Code != 400 {
			t.Errorf("q=%s: %d %s, want 400", q, rec.Code, rec.Body)
		}
	}
	if rec := call(h, "GET", "/api/activity/keys/aggregate/0123abcd/1/1/2020/2/1/2020?p=9223372036854775807", ""); rec.Code != 200 {
		t.Errorf("aggregate far page: %d %s", rec.Code, rec.Body)
	}
}

// TestKeyRequestSecretsAndRedirects: HMAC secrets of at least 32 bytes, not
// one byte repeated; OAuth redirect URIs absolute https (http on loopback
// only), with no fragment, no credentials, no other scheme.
func TestKeyRequestSecretsAndRedirects(t *testing.T) {
	h := newTestServer(t)
	if rec := call(h, "PUT", "/api/portal/catalogue", `{"apis":[{"policy_id":"pol-jwt","auth_type":"jwt"},{"policy_id":"pol-oauth","auth_type":"oauth"}]}`); rec.Code != 200 {
		t.Fatalf("catalogue: %d %s", rec.Code, rec.Body)
	}
	rec := call(h, "POST", "/api/portal/developers", `{"email":"o@example.com"}`)
	dev := strings.Split(rec.Body.String(), `"Message":"`)[1][:24]
	issue := func(body string) *httptest.ResponseRecorder {
		return call(h, "POST", "/api/portal/developers/"+dev+"/keys", body)
	}
	for name, secret := range map[string]string{
		"16 NUL bytes":      strings.Repeat(`\u0000`, 16),
		"32 NUL bytes":      strings.Repeat(`\u0000`, 32),
		"one byte repeated": strings.Repeat("a", 40),
		"31 bytes":          strings.Repeat("ab", 15) + "c",
	} {
		if rec := issue(`{"apply_policies":["pol-jwt"],"jwt_secret":"` + secret + `"}`); rec.Code != 400 {
			t.Errorf("jwt_secret %s: %d %s, want 400", name, rec.Code, rec.Body)
		}
	}
	if rec := issue(`{"apply_policies":["pol-jwt"],"jwt_secret":"` + strings.Repeat("ab", 16) + `"}`); rec.Code != 200 {
		t.Errorf("a 32-byte secret: %d %s", rec.Code, rec.Body)
	}
	for _, uri := range []string{"javascript:alert(1)", "data:text/html,x", "http://app.example.com/cb", "https://app.example.com/cb#frag",
		"https://user:pw@app.example.com/cb", "/relative/cb", "cb", "ftp://app.example.com/cb", "http://localhost.example.com/cb"} {
		if rec := issue(`{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"` + uri + `"}}`); rec.Code != 400 {
			t.Errorf("redirect_uri %s: %d %s, want 400", uri, rec.Code, rec.Body)
		}
	}
	for _, uri := range []string{"https://app.example.com/cb?x=1", "http://localhost:8080/cb", "http://127.0.0.1/cb", "http://[::1]:9000/cb"} {
		if rec := issue(`{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"` + uri + `"}}`); rec.Code != 200 {
			t.Errorf("redirect_uri %s: %d %s, want 200", uri, rec.Code, rec.Body)
		}
	}
}

// TestOneAuthorizationHeader: two Authorization headers are a 400, not
// "the first wins", whatever they hold.
func TestOneAuthorizationHeader(t *testing.T) {
	h := newTestServer(t)
	req := httptest.NewRequest("GET", "/api/portal/developers", nil)
	req.Header.Add("Authorization", "admin")
	req.Header.Add("Authorization", "admin")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "one Authorization header") {
		t.Errorf("two Authorization headers: %d %s", rec.Code, rec.Body)
	}
}

// TestKeyRequestsNeverAnswerTheSecret: jwt_secret is write-only.
func TestKeyRequestsNeverAnswerTheSecret(t *testing.T) {
	h := newTestServer(t)
	call(h, "PUT", "/api/portal/catalogue", `{"apis":[{"policy_id":"pol-jwt","auth_type":"jwt"}]}`)
	rec := call(h, "POST", "/api/portal/developers", `{"email":"j@example.com"}`)
	dev := strings.Split(rec.Body.String(), `"Message":"`)[1][:24]
	const secret = "a-pending-hmac-secret-of-32bytes"
	rec = call(h, "POST", "/api/portal/requests", `{"by_user":"`+dev+`","for_plan":"pol-jwt","jwt_secret":"`+secret+`"}`)
	if rec.Code != 200 {
		t.Fatalf("file: %d %s", rec.Code, rec.Body)
	}
	id := strings.Split(rec.Body.String(), `"Message":"`)[1][:24]
	for _, path := range []string{"/api/portal/requests", "/api/portal/requests/" + id} {
		if body := call(h, "GET", path, "").Body.String(); strings.Contains(body, secret) {
			t.Errorf("GET %s answers the secret: %s", path, body)
		}
	}
	if rec := call(h, "PUT", "/api/portal/requests/approve/"+id, ""); rec.Code != 200 {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	if body := call(h, "GET", "/api/portal/requests/"+id, "").Body.String(); strings.Contains(body, secret) {
		t.Errorf("an approved request answers the secret: %s", body)
	}
}

// TestVerifyCredentialsLimits: after a client's failures on an account,
// 429 with Retry-After for that client before any password is checked
// (the right one included), while another client signs in; after the
// client's failures on any accounts, every account from it; a success
// clears the account's count.
func TestVerifyCredentialsLimits(t *testing.T) {
	h := newLimitedServer(t, guard.Policy{Window: time.Minute, PairMax: 3, ClientMax: 5})
	for _, e := range []string{"a@example.com", "b@example.com"} {
		call(h, "POST", "/api/portal/developers", `{"email":"`+e+`","password":"right-password"}`)
	}
	for i := range 3 {
		if rec := verifyFrom(h, "192.0.2.1:1234", "a@example.com", "wrong"); rec.Code != 401 {
			t.Fatalf("wrong password %d: %d", i, rec.Code)
		}
	}
	rec := verifyFrom(h, "192.0.2.1:1234", "a@example.com", "right-password")
	if rec.Code != 429 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "Too many failed attempts") {
		t.Errorf("the right password after 3 failures: %d %q %s, want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if rec := verifyFrom(h, "198.51.100.2:1234", "a@example.com", "right-password"); rec.Code != 200 {
		t.Errorf("the account from a client without failures: %d, want 200", rec.Code)
	}
	if rec := verifyFrom(h, "192.0.2.1:1234", "b@example.com", "right-password"); rec.Code != 200 {
		t.Errorf("another account from the same client: %d", rec.Code)
	}
	verifyFrom(h, "192.0.2.1:1234", "b@example.com", "wrong")
	verifyFrom(h, "192.0.2.1:1234", "c@example.com", "wrong") // an unknown account counts for the client too
	if rec := verifyFrom(h, "192.0.2.1:1234", "b@example.com", "right-password"); rec.Code != 429 {
		t.Errorf("after 5 failures from one client: %d, want 429", rec.Code)
	}
}

// TestVerifyCredentialsSimultaneousGuesses: 200 wrong passwords for one
// account sent at once compare at most the limit's worth: the rest are
// 429 before any password is checked.
func TestVerifyCredentialsSimultaneousGuesses(t *testing.T) {
	h := newLimitedServer(t, guard.Policy{Window: time.Minute, PairMax: 10, ClientMax: 50})
	call(h, "POST", "/api/portal/developers", `{"email":"a@example.com","password":"right-password"}`)
	codes := make(chan int, 200)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		wg.Go(func() {
			<-start
			codes <- verifyFrom(h, "192.0.2.1:1234", "a@example.com", fmt.Sprint("guess-", i)).Code
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[401] > 10 || n[401]+n[429] != 200 {
		t.Errorf("200 simultaneous guesses: %v, want at most 10 answered 401 (checked), the rest 429", n)
	}
}

func newLimitedServer(t *testing.T, p guard.Policy) http.Handler {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	api, err := rest.NewServer(rest.Config{Developers: db, Catalogue: db, Keys: db, Changes: db, Credentials: db, Hits: db, Tokens: db, TokenAdmin: db,
		AdminKeyHash: sha256.Sum256([]byte("admin")), SignIn: guard.NewSignIn(p)})
	if err != nil {
		t.Fatal(err)
	}
	return api.Handler()
}

// verifyFrom calls verify_credentials from the client at addr.
func verifyFrom(h http.Handler, addr, user, pw string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/api/portal/developers/verify_credentials",
		strings.NewReader(`{"username":"`+user+`","password":"`+pw+`"}`))
	req.Header.Set("Authorization", "admin")
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestMembersMatchIgnoringCase: Tyk's clients may capitalise a member, as
// encoding/json accepts; the strict check accepts what the decoder reads.
func TestMembersMatchIgnoringCase(t *testing.T) {
	h := newTestServer(t)
	rec := call(h, "POST", "/api/portal/developers/verify_credentials", `{"Username":"nobody@example.com","Password":"wrong-password"}`)
	if rec.Code != 401 {
		t.Errorf("capitalised members: %d %s, want 401", rec.Code, rec.Body)
	}
}
