package rest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
