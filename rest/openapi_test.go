package rest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keylens/keylens/docs"
	"github.com/keylens/keylens/docs/contract"
)

// TestRoutesDescribed holds the routes the API registers and the admin
// listener's operations in docs/openapi.yaml to each other: a route
// missing from the description fails, and so does an operation no route
// serves. Each operation's path, with its parameters filled in, is matched
// by a ServeMux holding the registered patterns, as the API's own mux
// matches it.
func TestRoutesDescribed(t *testing.T) {
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	routes := newAPI(t).Routes()
	mux := http.NewServeMux()
	for _, p := range routes {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	described := map[string]bool{}
	ops := c.Operations(contract.Admin)
	if len(ops) == 0 {
		t.Fatal("the description has no operation on the admin listener")
	}
	for _, op := range ops {
		for _, m := range append([]string{op.Method}, op.AlsoMethods...) {
			_, pattern := mux.Handler(httptest.NewRequest(m, op.Sample(), nil))
			pm, _, _ := strings.Cut(pattern, " ")
			switch {
			case pattern == "":
				t.Errorf("%s %s is described, but no route serves it", m, op.Path)
			case pm == m:
				described[pattern] = true
			case m == http.MethodHead && pm == http.MethodGet: // ServeMux serves HEAD with GET
			default:
				t.Errorf("%s %s is described, but served as %s", m, op.Path, pattern)
			}
		}
	}
	for _, p := range routes {
		if !described[p] {
			t.Errorf("the route %s is registered but not described in docs/openapi.yaml", p)
		}
	}
}

// TestOpenAPIServed: the description is served as JSON at
// /api/openapi.json without the admin key, and is docs/openapi.yaml.
func TestOpenAPIServed(t *testing.T) {
	h := newTestServer(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	want, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got, wantV any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(want, &wantV)
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(wantV)
	if string(gotJSON) != string(wantJSON) {
		t.Error("/api/openapi.json is not docs/openapi.yaml")
	}
	if !strings.Contains(string(gotJSON), `"/api/portal/developers"`) {
		t.Error("/api/openapi.json lacks the developers route")
	}
}
