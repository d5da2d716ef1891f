package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/docs"
	"github.com/keylens/keylens/docs/contract"
)

// contractTransport checks every exchange the tests have with a keylens
// listener against docs/openapi.yaml: an undocumented route, status,
// member or shape fails the test that sent it. Exchanges with anything
// else (nginx, Caddy, the Tyk double) pass through unchecked, and so do
// the console's pages under /admin/, which are not part of the API.
var contractTransport = &contract.Transport{Checker: mustLoadContract(), Report: reportContract}

func mustLoadContract() *contract.Checker {
	c, err := contract.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return c
}

type testKey struct{}

// withTest attaches t to req, so that a failed check fails t.
func withTest(req *http.Request, t testing.TB) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), testKey{}, t))
}

var (
	orphanMu sync.Mutex
	orphans  []string // failed checks of requests sent without a test
)

func reportContract(ctx context.Context, err error) {
	if t, ok := ctx.Value(testKey{}).(testing.TB); ok {
		t.Errorf("%v", err) // Errorf is safe from any goroutine
		return
	}
	orphanMu.Lock()
	defer orphanMu.Unlock()
	orphans = append(orphans, err.Error())
}

// contractSummary prints what the contract check covered, and fails the
// run for failed checks that no test could be told of.
func contractSummary() int {
	c := contractTransport.Checker
	used, total, unused := c.Exercised()
	fmt.Printf("contract: %d exchanges validated against docs/openapi.yaml, using %d of its %d operations (per listener)\n", c.Validated(), used, total)
	if testing.Verbose() {
		fmt.Printf("contract: not used: %s\n", strings.Join(unused, ", "))
	}
	orphanMu.Lock()
	defer orphanMu.Unlock()
	for _, o := range orphans {
		fmt.Fprintln(os.Stderr, o)
	}
	if len(orphans) > 0 {
		return 1
	}
	return 0
}

// TestOpenAPIServed: the binary serves its description at
// /api/openapi.json without the admin key, and it is docs/openapi.yaml,
// loadable and valid as OpenAPI 3.1.
func TestOpenAPIServed(t *testing.T) {
	in := startDefault(t)
	r := in.doAuth("GET", "/api/openapi.json", "", "")
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", r.Status, r.Header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || doc.Paths.Find("/api/portal/developers/{id}") == nil || doc.Paths.Find("/auth") == nil {
		t.Errorf("openapi %q, or a route is missing", doc.OpenAPI)
	}
	want, err := docs.OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(r.Body), want) {
		t.Error("/api/openapi.json is not docs/openapi.yaml as built")
	}
}

// TestContractTour sends what the other tests do not: every method of
// forward-auth, HEAD where it is served, keylens's own admin routes, and
// refused inputs of each kind, each answer checked by the test and,
// through the client, against the description.
func TestContractTour(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey}, "--assertions")
	dev, raw := issuedKey(t, in)
	basic := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-basic"]}`))
	hash := keylens.HashKey(raw)
	key := map[string]string{"Authorization": raw}
	hour := time.Now().Unix() / 3600
	type call struct {
		admin        bool
		method, path string
		body         string
		headers      map[string]string
		want         int
	}
	calls := []call{
		{true, "HEAD", "/healthz", "", nil, 200},
		{true, "HEAD", "/api/portal/developers", "", nil, 200}, // ServeMux answers HEAD for every GET
		{true, "GET", "/api/portal/developers?p=abc", "", nil, 400},
		{true, "PATCH", "/api/portal/developers", "", nil, 405},
		{true, "GET", "/api/portal/developers/" + dev + "/nope", "", nil, 404},
		{true, "POST", "/api/portal/configuration", `{"signup_fields":["Company"],"require_key_approval":true,"oauth_usage_limit":-1}`, nil, 200},
		{true, "GET", "/api/portal/configuration", "", nil, 200},
		{true, "GET", "/api/activity/keys/" + raw + "/1/2/2024/31/3/2024?res=week", "", nil, 400},
		{true, "GET", "/api/activity/keys/" + raw + "/1/2/2024/31/3/2024?res=hour&by_code=true&p=1", "", nil, 200},
		{true, "GET", "/api/keylens/changes/last", "", nil, 200},
		{true, "GET", "/api/keylens/changes?after=0&limit=5", "", nil, 200},
		{true, "GET", "/api/keylens/changes?limit=0", "", nil, 400},
		{true, "GET", "/api/keylens/changes?wait=soon", "", nil, 400},
		{true, "GET", "/api/keylens/credentials/" + hash, "", nil, 200},
		{true, "GET", "/api/keylens/credentials/0000000000000000", "", nil, 404},
		{true, "GET", "/api/keylens/credentials?basic_username=" + url.QueryEscape(basic.RawKey), "", nil, 200},
		{true, "GET", "/api/keylens/credentials", "", nil, 400},
		{true, "POST", "/api/keylens/hits", fmt.Sprintf(`{"batches":[{"batch_id":"tour-1","deltas":[{"key_id":%q,"api_id":"api-token","hour":%d,"code":200,"hits":2,"success":2,"error":0,"last_hit":%d}]}]}`, hash, hour, time.Now().UnixNano()), nil, 200},
		{true, "POST", "/api/keylens/hits", `{"batches":[],"batch_id":"x"}`, nil, 400},
		{false, "HEAD", "/developer", "", key, 200},
		{false, "GET", "/developer", "", map[string]string{"Authorization": "nope"}, 401},
		{false, "HEAD", "/healthz", "", nil, 200},
		{false, "HEAD", "/metrics", "", nil, 200},
		{false, "POST", "/metrics", "", nil, 405},
		{false, "GET", "/.well-known/jwks.json", "", nil, 200},
		{false, "HEAD", "/.well-known/jwks.json", "", nil, 200},
		{false, "POST", "/introspect", "token=" + url.QueryEscape(raw), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 200},
		{false, "POST", "/introspect", "token=nope", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 200},
		{false, "POST", "/introspect", `{"token":"x"}`, map[string]string{"Content-Type": "application/json"}, 400},
		{false, "GET", "/changes?after=-1", "", nil, 400},
		{false, "GET", "/changes", "", nil, 200},
		{false, "POST", "/hits", `[{"key":"k","code":99}]`, nil, 400},
		{false, "GET", "/nope", "", nil, 404},
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
		calls = append(calls, call{false, m, "/auth", "", key, 200}, call{false, m, "/auth/orders/1", "", key, 200})
	}
	calls = append(calls, call{false, "GET", "/auth", "", nil, 401})
	for _, c := range calls {
		base := in.SidecarURL
		if c.admin {
			base = in.AdminURL
		}
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, err := http.NewRequest(c.method, base+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.admin {
			req.Header.Set("Authorization", in.Key)
		}
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		if r := send(t, req); r.Status != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.Status, c.want, r.Body)
		}
	}
}
