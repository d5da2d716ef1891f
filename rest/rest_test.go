package rest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylens/keylens/docs/contract"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sqlstore"
)

// newTestServer serves the API over a real SQLite file, in process: every
// handler test is a few milliseconds. Every exchange of a test (not of a
// fuzz target, whose inputs are meant to be anything) is checked against
// docs/openapi.yaml.
func newTestServer(t testing.TB) http.Handler {
	h := newAPI(t).Handler()
	if _, fuzz := t.(*testing.F); fuzz {
		return h
	}
	return checked(t, h)
}

// newAPI is the API over a real SQLite file; the admin key is "admin".
func newAPI(t testing.TB) *rest.Server {
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	api, err := rest.NewServer(rest.Config{Developers: db, Catalogue: db, Keys: db, Changes: db, Credentials: db, Hits: db, Tokens: db, TokenAdmin: db, AdminKeyHash: sha256.Sum256([]byte("admin"))})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// checked serves h, checking every exchange against docs/openapi.yaml:
// a failed check fails t.
func checked(t testing.TB, h http.Handler) http.Handler {
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading the request: %v", err)
		}
		orig := r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := c.Check(contract.Admin, orig, body, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t.Errorf("%v", err)
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// FuzzDeveloperBodies sends arbitrary bodies to every route that reads one.
// Whatever arrives, the answer is a 2xx or 4xx envelope, never a 500.
func FuzzDeveloperBodies(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@b.io"}`, `{"email":"a@b.io","password":"123456"}`, `{"fields":{"custom1":"sdf",}}`,
		`{"email":"a@b.io","keys":{"eyJvcmciOiJvIn0=":["p"]}}`, `{"username":"a@b.io","password":"x"}`, `{"password":"abcdefg"}`,
		`{"email":"a@b.io","oauth_clients":{"p":[{"client_id":"c"}]},"subscriptions":{"p":"k"}}`, `null`, `[]`, "\x00",
		`{"by_user":"000000000000000000000000","for_plan":"p","fields":{"a":[1,{"b":null}]}}`, `{"apis":[{"policy_id":"p","auth_type":"basic","config":{}}]}`,
		`{"require_key_approval":true,"signup_fields":["a"],"x":{"y":1}}`, `{"apply_policies":["p"],"oauth_info":{"redirect_uri":"x"}}`,
		`{"token":"klat_x","token_type_hint":"access_token"}`, `{"client_secret":"MzUy"}`,
		`{"client_id":"c","client_secret":"s","token_hash":"0000000000000000000000000000000000000000000000000000000000000000","ttl_seconds":60}`,
	} {
		f.Add(uint8(0), s)
	}
	h := newTestServer(f)
	routes := []struct{ method, path string }{
		{"POST", "/api/portal/developers"},
		{"PUT", "/api/portal/developers/000000000000000000000000"},
		{"POST", "/api/portal/developers/verify_credentials"},
		{"POST", "/api/portal/developers/password/000000000000000000000000"},
		{"POST", "/api/portal/requests"},
		{"PUT", "/api/portal/requests/000000000000000000000000"},
		{"PUT", "/api/portal/catalogue"},
		{"PUT", "/api/portal/configuration"},
		{"POST", "/api/portal/developers/000000000000000000000000/keys"},
		{"PUT", "/api/portal/developers/000000000000000000000000/keys/abcd1234"},
		{"POST", "/oauth-clients/411f0800957c4a3e81fe181141dbc22a/revoke"},
		{"POST", "/api/portal/oauth-clients/411f0800957c4a3e81fe181141dbc22a/revoke_all"},
		{"POST", "/api/keylens/oauth/tokens"},
		{"POST", "/api/keylens/oauth/tokens/revoke"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(body))
		req.Header.Set("Authorization", "admin")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || !strings.HasPrefix(rec.Body.String(), `{"Status":`) {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, rec.Code, rec.Body)
		}
	})
}

// FuzzAnalyticsPaths sends arbitrary keys, dates and query strings to the
// analytics routes: the answer is a 200 list or a 4xx envelope, never 5xx.
func FuzzAnalyticsPaths(f *testing.F) {
	for _, s := range [][4]string{
		{"add2b342,5f1d9603,", "5/8/2017", "13/8/2017", "p=-1&res=day"},
		{"k", "05/08/2017", "31/12/2017", "res=hour&api_id=x&by_code=true"},
		{"", "31/2/2017", "1/1/1", "res=week&p=x"},
		{"a%2Fb", "1/13/2017", "0/0/0", "p=99999999999999999999"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	h := newTestServer(f)
	f.Fuzz(func(t *testing.T, keys, from, to, query string) {
		for _, path := range []string{
			"/api/activity/keys/aggregate/" + keys + "/" + from + "/" + to + "?" + query,
			"/api/activity/keys/" + keys + "/" + from + "/" + to + "?" + query,
			"/api/portal/developers/000000000000000000000000/usage?from=" + from + "&to=" + to + "&" + query,
		} {
			req, err := http.NewRequest("GET", "http://x"+path, nil)
			if err != nil {
				return // not a URL a client could send
			}
			req.Header.Set("Authorization", "admin")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
			}
		}
	})
}
