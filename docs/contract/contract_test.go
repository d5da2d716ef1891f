package contract

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCheck: the checker passes exchanges the description allows and fails
// the others, one way of differing at a time.
func TestCheck(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	json := http.Header{"Content-Type": {"application/json"}}
	const ok, okEnv = `{"last":3}`, `{"Status":"OK","Message":"Data updated","Meta":null}`
	const notFound = `{"Status":"Error","Message":"Not found","Meta":null}`
	goodReq := `{"email":"ada@example.com","fields":{"Name":"Ada"}}`
	for _, tc := range []struct {
		name, listener, method, path, reqBody, auth string
		status                                      int
		header                                      http.Header
		body                                        string
		wantErr                                     string // "" for none
	}{
		{"documented", Admin, "GET", "/api/keylens/changes/last", "", "k", 200, json, ok, ""},
		{"an undocumented member", Admin, "GET", "/api/keylens/changes/last", "", "k", 200, json, `{"last":3,"next":4}`, "not one the description allows"},
		{"a member of the wrong type", Admin, "GET", "/api/keylens/changes/last", "", "k", 200, json, `{"last":"3"}`, "not one the description allows"},
		{"an undocumented status", Admin, "GET", "/api/keylens/changes/last", "", "k", 418, json, ok, "not one the description allows"},
		{"another content type", Admin, "GET", "/api/keylens/changes/last", "", "k", 200, http.Header{"Content-Type": {"text/html"}}, ok, "not one the description allows"},
		{"an error outside the envelope", Admin, "GET", "/api/keylens/changes/last", "", "k", 404, json, `{"error":"x"}`, "not one the description allows"},
		{"a good body", Admin, "PUT", "/api/portal/developers/abc", goodReq, "k", 200, json, okEnv, ""},
		{"member names ignoring case", Admin, "PUT", "/api/portal/developers/abc", `{"EMAIL":"a@example.com","Fields":{}}`, "k", 200, json, okEnv, ""},
		{"a refused body, refused", Admin, "PUT", "/api/portal/developers/abc", `{"emial":"a"}`, "k", 400, json, `{"Status":"Error","Message":"x","Meta":null}`, ""},
		{"a refused body, accepted", Admin, "PUT", "/api/portal/developers/abc", `{"emial":"a"}`, "k", 200, json, okEnv, "refuses the request"},
		{"no admin key, accepted", Admin, "PUT", "/api/portal/developers/abc", goodReq, "", 200, json, okEnv, "refuses the request"},
		{"no admin key, refused", Admin, "PUT", "/api/portal/developers/abc", goodReq, "", 401, json, `{"Status":"Error","Message":"Not authorised","Meta":null}`, ""},
		{"HEAD of an admin GET", Admin, "HEAD", "/api/keylens/changes/last", "", "k", 200, json, "", ""},
		{"HEAD of an admin GET, refused", Admin, "HEAD", "/api/keylens/changes/last", "", "k", 418, json, "", "not one the description allows"},
		{"HEAD of a sidecar GET that does not serve it", Sidecar, "HEAD", "/changes", "", "", 200, json, "", "no operation"},
		{"Tyk's UPDATE", Admin, "UPDATE", "/api/portal/requests/abc", `{"for_plan":"p"}`, "k", 200, json, okEnv, ""},
		{"another unknown method", Admin, "FROB", "/api/portal/requests/abc", "", "k", 405, json, notFound, ""},
		{"an unknown route, 404", Admin, "GET", "/api/nope", "", "k", 404, json, notFound, ""},
		{"an unknown route, 200", Admin, "GET", "/api/nope", "", "k", 200, json, okEnv, "no operation"},
		{"an unknown route, plain text", Admin, "GET", "/api/nope", "", "k", 404, http.Header{}, "404 page not found", "not JSON"},
		{"the console", Admin, "GET", "/admin/developers", "", "", 200, http.Header{"Content-Type": {"text/html"}}, "<html>", ""},
		{"forward-auth below /auth/", Sidecar, "POST", "/auth/orders/1", "", "k", 200, http.Header{}, "", ""},
		{"forward-auth refused", Sidecar, "GET", "/auth", "", "k", 401, json, `{"error":"unknown or missing key"}`, ""},
		{"a sidecar error in the envelope", Sidecar, "GET", "/auth", "", "k", 401, json, `{"Status":"Error","Message":"x","Meta":null}`, "not one the description allows"},
		{"an unknown sidecar path", Sidecar, "GET", "/nope", "", "", 404, json, `{"error":"not found"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *strings.Reader
			if tc.reqBody != "" {
				body = strings.NewReader(tc.reqBody)
			} else {
				body = strings.NewReader("")
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			err := c.Check(tc.listener, req, []byte(tc.reqBody), tc.status, tc.header, []byte(tc.body))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("passed, want an error with %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("%v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestOperations: both listeners have operations, /healthz is on both,
// and the one custom method is where Tyk's docs put it.
func TestOperations(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{Admin, Sidecar} {
		found := false
		for _, o := range c.Operations(l) {
			if o.Path == "/healthz" && o.Method == "GET" {
				found = true
			}
			if len(o.AlsoMethods) > 0 && (o.Path != "/api/portal/requests/{id}" || o.Method != "PUT" || o.AlsoMethods[0] != "UPDATE") {
				t.Errorf("%s %s also serves %v", o.Method, o.Path, o.AlsoMethods)
			}
		}
		if !found {
			t.Errorf("no GET /healthz on the %s listener", l)
		}
	}
	if got := (Operation{Path: "/a/{b}/c/{d}"}).Sample(); got != "/a/x/c/x" {
		t.Errorf("Sample %q", got)
	}
}
