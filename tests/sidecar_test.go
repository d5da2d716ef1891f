package tests

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/docs/contract"
	"github.com/keylens/keylens/identity"
)

// sidecarGet sends a request to the sidecar with the given headers.
func (in *instance) sidecar(method, path string, body io.Reader, headers map[string]string) response {
	in.t.Helper()
	req, err := http.NewRequest(method, in.SidecarURL+path, body)
	if err != nil {
		in.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return send(in.t, req)
}

// issuedKey sets up a catalogue, a developer with custom fields and an
// approved authToken key with key-request fields; it returns the raw key.
func issuedKey(t *testing.T, in *instance) (dev, raw string) {
	t.Helper()
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev = createDeveloper(t, in, `{"email":"ada@example.com","fields":{"Company":"Analytical Engines","Plan":"gold"}}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys",
		`{"apply_policies":["pol-token","pol-gold"],"fields":{"Use case":"invoicing","seats":3}}`))
	return dev, a.RawKey
}

func TestSidecarDeveloperLookup(t *testing.T) {
	in := startDefault(t)
	dev, raw := issuedKey(t, in)
	for _, auth := range []string{raw, "Bearer " + raw} {
		r := in.sidecar("GET", "/developer", nil, map[string]string{"Authorization": auth})
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		id := decodeAs[identity.Identity](t, r)
		if id.DeveloperID != dev || id.Email != "ada@example.com" || id.KeyID != keylens.HashKey(raw) ||
			strings.Join(id.Policies, ",") != "pol-token,pol-gold" || id.Fields["Plan"] != "gold" ||
			id.KeyRequestFields["Use case"] != "invoicing" || id.KeyRequestFields["seats"] != 3.0 || id.OrgID == "" {
			t.Errorf("identity %+v", id)
		}
		if strings.Contains(string(r.Body), raw) {
			t.Error("the raw key is echoed in the identity")
		}
	}
	for name, auth := range map[string]string{"missing": "", "unknown": "not-a-key", "truncated": raw[:20]} {
		r := in.sidecar("GET", "/developer", nil, map[string]string{"Authorization": auth})
		if r.Status != 401 || !strings.Contains(string(r.Body), `"error"`) || r.Header.Get(identity.OutcomeHeader) != identity.OutcomeUnknown {
			t.Errorf("%s: %d %s %v", name, r.Status, r.Body, r.Header)
		}
	}
	// Deactivated: 403.
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev, `{"email":"ada@example.com","inactive":true,"keys":{"`+keylens.HashKey(raw)+`":["pol-token"]}}`), 200, "OK", "")
	waitUntil(t, "deactivation reaches the sidecar", func() bool {
		r := in.sidecar("GET", "/developer", nil, map[string]string{"Authorization": raw})
		return r.Status == 403 && r.Header.Get(identity.OutcomeHeader) == identity.OutcomeInactive
	})
	// The admin API is no sidecar: the client says so rather than "unknown key".
	if _, err := identity.NewClient(in.AdminURL, identity.ClientOptions{}).Fetch(context.Background(), raw); !errors.Is(err, identity.ErrNotSidecar) ||
		!strings.Contains(err.Error(), "answered 401 without X-Keylens-Outcome") {
		t.Errorf("client pointed at the admin API: %v", err)
	}

	// The Go client upstream services use.
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev, `{"email":"ada@example.com","inactive":false,"keys":{"`+keylens.HashKey(raw)+`":["pol-token"]}}`), 200, "OK", "")
	c := identity.NewClient(in.SidecarURL, identity.ClientOptions{TTL: time.Millisecond})
	waitUntil(t, "reactivation", func() bool {
		id, err := c.Lookup(context.Background(), raw)
		return err == nil && id.DeveloperID == dev
	})
	if _, err := c.Lookup(context.Background(), "nope"); !errors.Is(err, identity.ErrUnknownKey) {
		t.Errorf("client, unknown key: %v", err)
	}
}

// waitUntil polls cond for up to 2 s and logs how long it took: the change
// feed answers on commit, so this reports latency rather than asserting it.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		if cond() {
			t.Logf("%s: %v", what, time.Since(start).Round(time.Microsecond))
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s: not within 2s", what)
}

func TestSidecarIntrospection(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	dev, raw := issuedKey(t, in)
	form := func(token string) io.Reader { return strings.NewReader(url.Values{"token": {token}}.Encode()) }
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	r := in.sidecar("POST", "/introspect", form(raw), ct)
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil || r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if got["active"] != true || got["sub"] != dev || got["username"] != "ada@example.com" || got["client_id"] != keylens.HashKey(raw) ||
		got["scope"] != "pol-token pol-gold" || got["developer_id"] != dev || got["key_request_fields"] == nil {
		t.Errorf("introspection %s", r.Body)
	}
	for name, token := range map[string]string{"unknown": "nope", "garbage": "\x01\x02", "jwt-shaped": "a.b.c"} {
		r := in.sidecar("POST", "/introspect", form(token), ct)
		if r.Status != 200 || string(r.Body) != `{"active":false}` {
			t.Errorf("%s: %d %s, want exactly {\"active\":false}", name, r.Status, r.Body)
		}
	}
	for name, tc := range map[string]struct {
		body   io.Reader
		ct     string
		method string
		status int
	}{
		"no token":     {strings.NewReader("x=1"), "application/x-www-form-urlencoded", "POST", 400},
		"json body":    {strings.NewReader(`{"token":"x"}`), "application/json", "POST", 400},
		"garbage form": {strings.NewReader("%zz&&=="), "application/x-www-form-urlencoded", "POST", 400},
		"GET":          {nil, "", "GET", 405},
	} {
		r := in.sidecar(tc.method, "/introspect", tc.body, map[string]string{"Content-Type": tc.ct})
		if r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", name, r.Status, r.Body, tc.status)
		}
	}

	// A body over the limit is refused from its Content-Length, before it
	// is read (sent raw: the server answers and closes mid-upload).
	if status := rawStatus(t, strings.TrimPrefix(in.SidecarURL, "http://"), "POST /introspect HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\ntoken="); status != "413" {
		t.Errorf("oversized body: %s", status)
	}

	// With --introspect-secret, callers must present it.
	in.stop()
	sec := startKeylens(t, in.Store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_INTROSPECT_SECRET=resource-server-secret"})
	for name, auth := range map[string]string{"none": "", "wrong": "Bearer nope", "raw secret": "resource-server-secret"} {
		r := sec.sidecar("POST", "/introspect", form(raw), map[string]string{"Content-Type": ct["Content-Type"], "Authorization": auth})
		if r.Status != 401 || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	r = sec.sidecar("POST", "/introspect", form(raw), map[string]string{"Content-Type": ct["Content-Type"], "Authorization": "Bearer resource-server-secret"})
	if r.Status != 200 || !strings.Contains(string(r.Body), `"active":true`) {
		t.Errorf("with the secret: %d %s", r.Status, r.Body)
	}
}

func TestSidecarForwardAuth(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_ASSERTIONS=true"})
	dev, raw := issuedKey(t, in)
	spoofed := map[string]string{
		"Authorization": raw, "X-Developer-Id": "evil", "X-Developer-Field-Admin": "true", "X-Developer-Email": "evil@example.com",
		"X-Key-Request-Field-Role": "root", "X-Developer-Assertion": "forged",
	}
	for _, method := range []string{"GET", "POST", "DELETE"} {
		r := in.sidecar(method, "/auth", nil, spoofed)
		if r.Status != 200 {
			t.Fatalf("%s /auth: %d %s", method, r.Status, r.Body)
		}
		want := map[string]string{"X-Developer-Id": dev, "X-Developer-Email": "ada@example.com", "X-Key-Id": keylens.HashKey(raw),
			"X-Developer-Policies": "pol-token,pol-gold", "X-Developer-Field-Company": "Analytical Engines", "X-Developer-Field-Plan": "gold",
			"X-Key-Request-Field-Use-case": "invoicing", "X-Key-Request-Field-Seats": "3"}
		for k, v := range want {
			if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s: header %s = %q, want %q", method, k, got, v)
			}
		}
		for _, k := range []string{"X-Developer-Field-Admin", "X-Key-Request-Field-Role"} {
			if r.Header.Get(k) != "" {
				t.Errorf("client-sent %s echoed", k)
			}
		}
		// The assertion verifies against the JWKS and carries the identity.
		v := identity.NewVerifier(in.SidecarURL, nil)
		id, err := v.Verify(context.Background(), r.Header.Get("X-Developer-Assertion"))
		if err != nil || id.DeveloperID != dev || id.Fields["Plan"] != "gold" {
			t.Errorf("assertion: %+v, %v", id, err)
		}
		if _, err := v.Verify(context.Background(), "forged"); err == nil {
			t.Error("a forged assertion verified")
		}
	}
	// /developer carries the assertion too: a client that requires one
	// accepts the answer.
	c := identity.NewClient(in.SidecarURL, identity.ClientOptions{Verifier: identity.NewVerifier(in.SidecarURL, nil)})
	if id, err := c.Fetch(context.Background(), raw); err != nil || id.DeveloperID != dev {
		t.Errorf("client requiring assertions: %+v, %v", id, err)
	}
	// Envoy's ext_authz appends the original path to /auth.
	if r := in.sidecar("GET", "/auth/orders/1?x=y", nil, map[string]string{"Authorization": raw}); r.Status != 200 || r.Header.Get("X-Developer-Id") != dev {
		t.Errorf("/auth/orders/1: %d, X-Developer-Id %q", r.Status, r.Header.Get("X-Developer-Id"))
	}
	for name, h := range map[string]map[string]string{
		"unknown key": {"Authorization": "nope", "X-Developer-Id": "evil"},
		"no key":      {"X-Developer-Id": "evil"},
	} {
		r := in.sidecar("GET", "/auth", nil, h)
		if r.Status != 401 || r.Header.Get("X-Developer-Id") != "" {
			t.Errorf("%s: %d, X-Developer-Id %q", name, r.Status, r.Header.Get("X-Developer-Id"))
		}
	}
	// Binary bytes in the key header: written on a raw socket, since Go's
	// client refuses to send them. fasthttp refuses control bytes in a
	// header as malformed HTTP (400); other high bytes reach the resolver
	// and are an unknown key (401).
	if status := rawStatus(t, strings.TrimPrefix(in.SidecarURL, "http://"),
		"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: \x7f\x01\xff\xfegarbage\r\nX-Developer-Id: evil\r\n\r\n"); status != "400" {
		t.Errorf("binary key with control bytes: status %s", status)
	}
	if status := rawStatus(t, strings.TrimPrefix(in.SidecarURL, "http://"),
		"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: \xff\xfe\x80garbage\r\nX-Developer-Id: evil\r\n\r\n"); status != "401" {
		t.Errorf("binary key: status %s", status)
	}
	// A header larger than the sidecar reads is refused, not a 500. The
	// sidecar answers once it has read its limit and closes the
	// connection, and the client may still be writing the rest: then the
	// exchange ends in a broken pipe or a reset instead of the answer. Such
	// a try is made again; an answer must be 431. Each try counts as an
	// unreadable request.
	oversized := 0
	for try := 1; ; try++ {
		oversized = try
		req, _ := http.NewRequest("GET", in.SidecarURL+"/auth", nil)
		req.Header.Set("Authorization", strings.Repeat("k", 20<<10))
		res, err := client.Do(withTest(req, t))
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 431 {
				t.Errorf("oversized header: %d", res.StatusCode)
			}
			break
		}
		if try == 5 || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("oversized header, try %d: %v", try, err)
		}
	}

	jwks := in.sidecar("GET", "/.well-known/jwks.json", nil, nil)
	if jwks.Status != 200 || !strings.Contains(string(jwks.Body), `"crv":"Ed25519"`) {
		t.Errorf("jwks: %d %s", jwks.Status, jwks.Body)
	}
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	for _, series := range []string{`keylens_sidecar_requests_total{endpoint="auth",outcome="ok"} 4`, `keylens_sidecar_requests_total{endpoint="auth",outcome="unknown"} 3`, fmt.Sprintf("keylens_sidecar_unreadable_requests_total %d\n", 1+oversized),
		"keylens_sidecar_cache_hits_total", "keylens_sidecar_store_lookup_duration_seconds_bucket", "keylens_sidecar_change_feed_last_seq",
		"keylens_sidecar_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if strings.Contains(metrics, raw) {
		t.Error("/metrics contains a raw key")
	}
	if strings.Contains(in.stderr.String(), raw) {
		t.Error("the logs contain a raw key")
	}
}

// TestSeparateSidecarProcess runs `keylens sidecar` as its own process on
// the portal's SQLite file, as beside a gateway on the same machine: a
// revocation made through the portal reaches it through the change feed.
func TestSeparateSidecarProcess(t *testing.T) {
	in := startDefault(t)
	_, raw := issuedKey(t, in)
	dev := decodeAs[struct{ Data []developerOut }](t, in.do("GET", "/api/portal/developers", "")).Data[0].ID

	base := startLoneSidecar(t, "--store", in.Store)
	get := func() int {
		req, _ := http.NewRequest("GET", base+"/developer", nil)
		req.Header.Set("Authorization", raw)
		return send(t, req).Status
	}
	if s := get(); s != 200 {
		t.Fatalf("separate sidecar: %d", s)
	}
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), ""), 200, "OK", "Data deleted")
	waitUntil(t, "revocation reaches the separate sidecar", func() bool { return get() == 401 })

	// The sidecar alone has no portal API.
	req, _ := http.NewRequest("GET", base+"/api/portal/developers", nil)
	if r := send(t, req); r.Status != 404 {
		t.Errorf("portal route on a lone sidecar: %d", r.Status)
	}
}

// startLoneSidecar runs `keylens sidecar` with args and returns its URL once
// /healthz says it follows the change feed, as a readiness probe would: the
// sidecar drops what it cached before it knew where the feed stood, so a
// test that relies on a cached answer must not start earlier.
func startLoneSidecar(t *testing.T, args ...string) string {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	cmd := exec.Command(keylensBin, append([]string{"sidecar", "--sidecar-addr", "127.0.0.1:0", "--log-format", "json", "--ready-file", ready}, args...)...)
	cmd.Env = cleanEnv()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	urls, err := waitReady(ready, done)
	if err != nil {
		t.Fatalf("keylens sidecar did not become ready (%v):\n%s", err, stderr.String())
	}
	base := urls["sidecar"]
	contractTransport.Register(contract.Sidecar, base)
	t.Cleanup(func() { contractTransport.Unregister(base) })
	waitUntil(t, "the sidecar follows the change feed", func() bool {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		return send(t, req).Status == 200
	})
	return base
}

// TestSidecarAgainstPortal runs `keylens sidecar --portal`, which reads
// through the portal's admin API instead of a store, as on a gateway node
// that cannot reach the database: keys resolve, Basic credentials verify,
// a revocation arrives through the long-polled change feed, and when the
// portal goes away hot keys keep answering while /healthz says why not all
// is well.
func TestSidecarAgainstPortal(t *testing.T) {
	in := startDefault(t)
	_, raw := issuedKey(t, in)
	dev := decodeAs[struct{ Data []developerOut }](t, in.do("GET", "/api/portal/developers", "")).Data[0].ID
	basic := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-basic"]}`))

	base := startLoneSidecar(t, "--portal", in.AdminURL, "--admin-key", in.Key)
	get := func(auth string) response {
		req, _ := http.NewRequest("GET", base+"/developer", nil)
		req.Header.Set("Authorization", auth)
		return send(t, req)
	}
	r := get(raw)
	id := decodeAs[identity.Identity](t, r)
	if r.Status != 200 || id.DeveloperID != dev || id.Email != "ada@example.com" || id.Fields["Plan"] != "gold" {
		t.Fatalf("key through the portal: %d %s", r.Status, r.Body)
	}
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(basic.RawKey+":"+basic.Password))
	if r := get(basicAuth); r.Status != 200 {
		t.Errorf("basic credential through the portal: %d %s", r.Status, r.Body)
	}
	wrongPass := "Basic " + base64.StdEncoding.EncodeToString([]byte(basic.RawKey+":wrong-password"))
	if r := get(wrongPass); r.Status != 401 {
		t.Errorf("wrong basic password: %d", r.Status)
	}
	if r := get("not-a-key"); r.Status != 401 {
		t.Errorf("unknown key: %d", r.Status)
	}
	health := func() int {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		return send(t, req).Status
	}

	// Hits counted by the lone sidecar are stored through the portal.
	req, _ := http.NewRequest("POST", base+"/hits", strings.NewReader(`[{"key":"`+raw+`","api_id":"api-token","code":200,"count":7}]`))
	if r := send(t, req); r.Status != 200 {
		t.Fatalf("POST /hits to the lone sidecar: %d %s", r.Status, r.Body)
	}
	waitUntil(t, "hits reach the portal", func() bool {
		l := decodeAs[hitList](t, in.do("GET", "/api/portal/developers/"+dev+"/usage", ""))
		return len(l.Data) == 1 && l.Data[0].Hits == 7
	})

	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), ""), 200, "OK", "Data deleted")
	waitUntil(t, "revocation reaches the sidecar through the portal", func() bool { return get(raw).Status == 401 })

	in.stop()
	if r := get(basicAuth); r.Status != 200 {
		t.Errorf("hot key with the portal gone: %d %s", r.Status, r.Body)
	}
	if s := health(); s == 200 {
		t.Error("/healthz says healthy with the portal gone")
	}
}

// rawStatus writes request on a new connection and returns the status code
// of the answer.
func rawStatus(t *testing.T, addr, request string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(line); len(f) >= 2 {
		return f[1]
	}
	return line
}

// TestIdentityHeadersBounded: a developer with 100 custom fields of 4 KiB
// does not produce 400 KiB of headers: /auth answers at most
// --max-identity-header-bytes of them, says it left fields out, and counts it.
func TestIdentityHeadersBounded(t *testing.T) {
	in := startDefault(t)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	fields := make([]string, 100)
	for i := range fields {
		fields[i] = fmt.Sprintf(`"f%03d":"%s"`, i, strings.Repeat("v", 4000))
	}
	dev := createDeveloper(t, in, `{"email":"wide@example.com","fields":{`+strings.Join(fields, ",")+`}}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	r := in.sidecar("GET", "/auth", nil, map[string]string{"Authorization": a.RawKey})
	if r.Status != 200 {
		t.Fatalf("/auth: %d", r.Status)
	}
	size := 0
	for name, vs := range r.Header {
		if identity.DefaultHeaderNames.IsIdentityHeader(name) {
			for _, v := range vs {
				size += len(name) + len(v) + 4
			}
		}
	}
	if size > identity.DefaultMaxHeaderBytes || r.Header.Get("X-Developer-Fields-Truncated") != "true" || r.Header.Get("X-Developer-Id") != dev {
		t.Errorf("identity headers: %d bytes, truncated %q, id %q", size, r.Header.Get("X-Developer-Fields-Truncated"), r.Header.Get("X-Developer-Id"))
	}
	if m := string(in.sidecar("GET", "/metrics", nil, nil).Body); !strings.Contains(m, "keylens_sidecar_identity_headers_truncated_total 1") {
		t.Error("/metrics does not count the truncation")
	}
}

// TestSidecarChangeFeed: GET /changes serves the change feed to the Tyk
// plugin, guarded by the hits secret, and serves a change only once the
// sidecar's own cache has applied it: right after reading a revocation, a
// lookup of the key is refused.
func TestSidecarChangeFeed(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_HITS_SECRET=feed-secret"})
	dev, raw := issuedKey(t, in)
	c := identity.NewClient(in.SidecarURL, identity.ClientOptions{})
	ctx := context.Background()
	if _, err := c.Changes(ctx, -1, 0, ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without the secret: %v", err)
	}
	if r := in.sidecar("GET", "/changes?after=x", nil, map[string]string{"Authorization": "Bearer feed-secret"}); r.Status != 400 {
		t.Errorf("after=x: %d %s", r.Status, r.Body)
	}
	var start *identity.Changes
	waitUntil(t, "the sidecar follows the feed", func() bool {
		var err error
		start, err = c.Changes(ctx, -1, 0, "feed-secret")
		return err == nil
	})
	if start.Last < 1 || len(start.Changes) != 0 {
		t.Fatalf("start position %+v: want the newest change, none listed", start)
	}
	if id, err := c.Fetch(ctx, raw); err != nil || id.DeveloperID != dev {
		t.Fatalf("key before revocation: %v", err)
	}
	type polled struct {
		ch  *identity.Changes
		err error
		at  time.Time
	}
	done := make(chan polled, 1)
	go func() {
		ch, err := c.Changes(ctx, start.Last, 10*time.Second, "feed-secret")
		done <- polled{ch, err, time.Now()}
	}()
	// Give the poll time to start waiting, to exercise the wake-up; the
	// assertions hold either way (a poll that starts late answers at once).
	time.Sleep(100 * time.Millisecond)
	revoked := time.Now()
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), ""), 200, "OK", "Data deleted")
	var p polled
	select {
	case p = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll did not answer")
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	t.Logf("revocation served by the long poll %v after the DELETE answered", p.at.Sub(revoked).Round(time.Microsecond))
	if p.at.Sub(revoked) > time.Second {
		t.Errorf("the long poll answered %v after the revocation", p.at.Sub(revoked))
	}
	var found bool
	for _, ch := range p.ch.Changes {
		found = found || (ch.Kind == identity.ChangeKeyRevoked && ch.KeyHash == keylens.HashKey(raw) && ch.DeveloperID == dev)
	}
	if !found || p.ch.Last <= start.Last || p.ch.Reset {
		t.Fatalf("changes %+v: want the revocation of %s", p.ch, keylens.HashKey(raw))
	}
	// Served only once applied: the sidecar itself refuses the key now.
	if _, err := c.Fetch(ctx, raw); !errors.Is(err, identity.ErrUnknownKey) {
		t.Errorf("right after the change was served, the sidecar answered %v", err)
	}
	// A position the feed never reached (a reader of a recreated store):
	// reset, at once, to where this sidecar stands.
	if ch, err := c.Changes(ctx, 1<<40, 10*time.Second, "feed-secret"); err != nil || !ch.Reset || ch.Last != p.ch.Last {
		t.Errorf("a position ahead of the feed: %+v, %v", ch, err)
	}
	// Nothing newer: a short poll answers empty at its position.
	if ch, err := c.Changes(ctx, p.ch.Last, 50*time.Millisecond, "feed-secret"); err != nil || len(ch.Changes) != 0 || ch.Last != p.ch.Last {
		t.Errorf("empty poll: %+v, %v", ch, err)
	}
}

// TestOneAuthorizationHeaderAtTheSidecar: two Authorization headers are a
// 400 at the sidecar, not "the first wins".
func TestOneAuthorizationHeaderAtTheSidecar(t *testing.T) {
	in := startDefault(t)
	_, raw := issuedKey(t, in)
	for _, path := range []string{"/auth", "/developer"} {
		req, _ := http.NewRequest("GET", in.SidecarURL+path, nil)
		req.Header.Add("Authorization", raw)
		req.Header.Add("Authorization", "another")
		if r := send(t, req); r.Status != 400 {
			t.Errorf("%s with two Authorization headers: %d %s", path, r.Status, r.Body)
		}
		req, _ = http.NewRequest("GET", in.SidecarURL+path, nil)
		req.Header.Set("Authorization", raw)
		if r := send(t, req); r.Status != 200 {
			t.Errorf("%s with one: %d", path, r.Status)
		}
	}
}
