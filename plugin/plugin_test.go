package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/gateway"
	"github.com/TykTechnologies/tyk/user"
	"github.com/keylens/keylens/identity/clock"
)

// The hooks run against a real keylens (portal and sidecar, one process, a
// real SQLite file) over loopback, inside a double of the gateway's
// request context.

const adminKey = "plugin-tests-admin-key-0123456789"

var kl struct {
	admin, sidecar string
}

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "keylens-plugin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "keylens")
		build := exec.Command("go", "build", "-o", bin, "./cmd/keylens")
		build.Dir = ".."
		build.Env = append(os.Environ(), "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building keylens: %v\n%s", err, out)
			return 1
		}
		ready := filepath.Join(dir, "ready.json")
		cmd := exec.Command(bin, "serve", "--store", "sqlite:"+filepath.Join(dir, "k.db"), "--admin-addr", "127.0.0.1:0",
			"--sidecar-addr", "127.0.0.1:0", "--portal-addr", "127.0.0.1:0", "--log-format", "json", "--assertions", "--ready-file", ready)
		cmd.Env = append(os.Environ(), "KEYLENS_ADMIN_KEY="+adminKey)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		// keylens writes its listeners' URLs to the ready file once both
		// listen: its one readiness signal.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if b, err := os.ReadFile(ready); err == nil {
				var urls map[string]string
				if err := json.Unmarshal(b, &urls); err != nil {
					fmt.Fprintln(os.Stderr, "ready file:", err)
					return 1
				}
				kl.admin, kl.sidecar = urls["admin"], urls["sidecar"]
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "keylens did not start")
				return 1
			}
		}
		return m.Run()
	}())
}

// admin calls the portal API and decodes a JSON answer into out.
func admin(t testing.TB, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, kl.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", adminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

var catalogueOnce sync.Once

// newKey makes a developer with custom fields and a key with key-request
// fields; it returns the developer id and the raw key.
func newKey(t testing.TB, email string) (string, string) {
	t.Helper()
	catalogueOnce.Do(func() {
		admin(t, "POST", "/api/portal/catalogue", `{"apis":[{"name":"Payments","policy_id":"pol-pay","api_id":"api-pay","auth_type":"authToken"}]}`, nil)
	})
	var env struct{ Message string }
	admin(t, "POST", "/api/portal/developers", `{"email":"`+email+`","fields":{"Company":"Analytical Engines","Plan":"gold"}}`, &env)
	var a struct{ RawKey string }
	admin(t, "POST", "/api/portal/developers/"+env.Message+"/keys", `{"apply_policies":["pol-pay"],"fields":{"Use case":"invoicing","seats":3}}`, &a)
	return env.Message, a.RawKey
}

// api is an API definition whose config_data points the plugin at the test
// sidecar, with short cache TTLs so that revocations show quickly.
func api(t testing.TB, extra string) *apidef.APIDefinition {
	t.Helper()
	var cfg map[string]interface{}
	js := `{"keylens":{"sidecar_url":"` + kl.sidecar + `","cache_ttl":"100ms","negative_cache_ttl":"100ms","flush_interval":"50ms"` + extra + `}}`
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		t.Fatal(err)
	}
	return &apidef.APIDefinition{APIID: "api-pay", OrgID: "org", ConfigData: cfg,
		CustomMiddleware: apidef.MiddlewareSection{Driver: apidef.GoPluginDriver,
			PostKeyAuth: []apidef.MiddlewareDefinition{{Name: "KeylensPostAuth", Path: "keylens-plugin.so", RequireSession: true}},
			Response:    []apidef.MiddlewareDefinition{{Name: "KeylensHits", Path: "keylens-plugin.so", RequireSession: true}}}}
}

// request is a client request with a spoofed identity, as the gateway
// hands it to the API's middleware.
func request(def *apidef.APIDefinition, token string, session *user.SessionState, key string) *http.Request {
	r := httptest.NewRequest("GET", "/pay", nil)
	if key != "" {
		r.Header.Set("Authorization", key)
	}
	r.Header.Set("X-Developer-Id", "spoofed")
	r.Header.Set("X-Developer-Field-Plan", "platinum")
	r.Header.Set("x-key-request-field-seats", "999")
	return gateway.Request(r, def, token, session)
}

func TestAuthHookSetsSessionAndHeaders(t *testing.T) {
	dev, raw := newKey(t, "ada@example.com")
	def := api(t, "")
	r := request(def, "", nil, raw)
	before := time.Now()
	rec, next := gateway.RunHook(KeylensAuth, r)
	if !next {
		t.Fatalf("known key refused: %d %s", rec.Code, rec.Body)
	}
	s := ctx.GetSession(r)
	if s == nil {
		t.Fatal("no session set")
	}
	// KeyID is the credential the client presented, never the key hash;
	// the org is the API's.
	if s.Alias != "ada@example.com" || s.OrgID != def.OrgID || fmt.Sprint(s.ApplyPolicies) != "[pol-pay]" || s.KeyID != raw {
		t.Errorf("session %+v", s)
	}
	if ctx.GetAuthToken(r) != raw {
		t.Errorf("auth token %q, want the raw key", ctx.GetAuthToken(r))
	}
	if gateway.SessionUpdateScheduled(r) {
		t.Error("session scheduled for persistence (persist_session defaults to false)")
	}
	if exp := time.Unix(s.Expires, 0); exp.Before(before.Add(sessionMargin)) || exp.After(time.Now().Add(time.Second+sessionMargin)) || s.SessionLifetime < 1 || s.SessionLifetime > 2 {
		t.Errorf("session expires %v (%v after the request), lifetime %d s: want 1 to 2 s, lifetime at most 2 s",
			exp, exp.Sub(before), s.SessionLifetime)
	}
	m := s.MetaData
	krf, _ := m["tyk_key_request_fields"].(map[string]interface{})
	uf, _ := m["tyk_user_fields"].(map[string]string)
	if m["tyk_developer_id"] != dev || m["tyk_developer_email"] != "ada@example.com" || krf["Use case"] != "invoicing" || uf["Plan"] != "gold" {
		t.Errorf("metadata %v", m)
	}
	// Flat copies that $tyk_meta templates can render.
	for k, want := range map[string]string{"tyk_key_request_fields_Use_case": "invoicing", "tyk_key_request_fields_seats": "3",
		"tyk_user_fields_Company": "Analytical Engines", "tyk_user_fields_Plan": "gold"} {
		if m[k] != want {
			t.Errorf("metadata %s = %v, want %q", k, m[k], want)
		}
	}
	h := r.Header
	if h.Get("X-Developer-Id") != dev || h.Get("X-Developer-Email") != "ada@example.com" || h.Get("X-Developer-Field-Plan") != "gold" ||
		h.Get("X-Key-Request-Field-Seats") != "3" || h.Get("X-Developer-Policies") != "pol-pay" || len(h.Values("X-Developer-Id")) != 1 {
		t.Errorf("upstream headers %v", h)
	}
	if h.Get("X-Key-Id") == "" || h.Get("X-Key-Id") == raw {
		t.Errorf("X-Key-Id %q: want the key's hash", h.Get("X-Key-Id"))
	}
}

func TestAuthHookRejects(t *testing.T) {
	dev, raw := newKey(t, "grace@example.com")
	def := api(t, "")
	for name, key := range map[string]string{"unknown key": "not-a-key", "no key": "", "bad basic": "Basic !!!"} {
		r := request(def, "", nil, key)
		rec, next := gateway.RunHook(KeylensAuth, r)
		if next || rec.Code != 401 || !json.Valid(rec.Body.Bytes()) || ctx.GetSession(r) != nil {
			t.Errorf("%s: %d %s, session %v", name, rec.Code, rec.Body, ctx.GetSession(r))
		}
	}
	// Deactivate the developer: 403, within the cache TTL.
	var d map[string]any
	admin(t, "GET", "/api/portal/developers/"+dev, "", &d)
	d["inactive"] = true
	body, _ := json.Marshal(d)
	admin(t, "PUT", "/api/portal/developers/"+dev, string(body), nil)
	waitFor(t, "inactive developer refused", func() bool {
		rec, _ := gateway.RunHook(KeylensAuth, request(def, "", nil, raw))
		return rec.Code == 403
	})
	d["inactive"] = false
	body, _ = json.Marshal(d)
	admin(t, "PUT", "/api/portal/developers/"+dev, string(body), nil)
	waitFor(t, "reactivated developer accepted", func() bool {
		_, next := gateway.RunHook(KeylensAuth, request(def, "", nil, raw))
		return next
	})
	// Revoke: 401.
	admin(t, "DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), "", nil)
	waitFor(t, "revoked key refused", func() bool {
		rec, _ := gateway.RunHook(KeylensAuth, request(def, "", nil, raw))
		return rec.Code == 401
	})
}

func TestPostAuthHookEnrichesGatewaySession(t *testing.T) {
	dev, raw := newKey(t, "hopper@example.com")
	def := api(t, "")
	// The gateway authenticated the key; its session carries Tyk's own
	// developer id, which the hook must keep.
	s := &user.SessionState{KeyID: "hash", MetaData: map[string]interface{}{"tyk_developer_id": "from-tyk"}}
	r := request(def, raw, s, "")
	if rec, next := gateway.RunHook(KeylensPostAuth, r); !next {
		t.Fatalf("refused: %d %s", rec.Code, rec.Body)
	}
	if s.MetaData["tyk_developer_id"] != "from-tyk" || s.MetaData["tyk_developer_email"] != "hopper@example.com" ||
		s.MetaData["tyk_key_request_fields_Use_case"] != "invoicing" {
		t.Errorf("metadata %v", s.MetaData)
	}
	if r.Header.Get("X-Developer-Id") != dev || r.Header.Get("X-Developer-Field-Plan") != "gold" || r.Header.Get("X-Key-Request-Field-Seats") != "3" {
		t.Errorf("headers %v", r.Header)
	}
	if gateway.SessionUpdateScheduled(r) {
		t.Error("post-auth scheduled a session write on every request")
	}

	// A key the gateway knows and keylens does not: it passes, with the
	// spoofed headers gone and none added.
	r = request(def, "gateway-only-key", &user.SessionState{}, "")
	if rec, next := gateway.RunHook(KeylensPostAuth, r); !next {
		t.Fatalf("unknown key refused in post-auth: %d", rec.Code)
	}
	for _, h := range []string{"X-Developer-Id", "X-Developer-Field-Plan", "X-Key-Request-Field-Seats"} {
		if r.Header.Get(h) != "" {
			t.Errorf("client-sent %s reached the upstream: %q", h, r.Header.Get(h))
		}
	}
	// No session: nothing to do, but spoofed headers still go.
	r = request(def, "", nil, raw)
	if _, next := gateway.RunHook(KeylensPostAuth, r); !next || r.Header.Get("X-Developer-Id") != "" {
		t.Errorf("without a session: next %v, X-Developer-Id %q", next, r.Header.Get("X-Developer-Id"))
	}
}

func TestMisconfigurationFailsClosed(t *testing.T) {
	_, raw := newKey(t, "lovelace@example.com")
	logs := captureLogs(t)
	for name, extra := range map[string]string{
		"bad type":        `,"cache_size":"big"`,
		"unknown setting": `,"sidecar":"x"`,
		"bad header":      `,"headers":{"developer_id":"X Dev"}`,
	} {
		def := api(t, extra)
		for range 3 {
			for _, hook := range []func(http.ResponseWriter, *http.Request){KeylensAuth, KeylensPostAuth} {
				rec, next := gateway.RunHook(hook, request(def, raw, &user.SessionState{}, raw))
				if next || rec.Code != 401 {
					t.Errorf("%s: %d, want 401", name, rec.Code)
				}
			}
		}
	}
	if n := strings.Count(logs.String(), "config_data.keylens is invalid"); n != 3 {
		t.Errorf("logged %d times for 3 bad definitions, want once each:\n%s", n, logs.String())
	}
	// A sidecar that does not answer: 503, not a pass.
	def := api(t, "")
	def.ConfigData["keylens"].(map[string]interface{})["sidecar_url"] = "http://127.0.0.1:1"
	rec, next := gateway.RunHook(KeylensAuth, request(def, "", nil, raw))
	if next || rec.Code != 503 {
		t.Errorf("sidecar down: %d", rec.Code)
	}
	if strings.Contains(logs.String(), raw) {
		t.Error("a raw key reached the log")
	}
}

// TestHitsReachTheAggregateEndpoint runs requests through the auth and
// response hooks; the counts travel to the sidecar and the store and come
// back from Tyk's aggregate endpoint with the right codes and the
// requests' latency, measured from the auth hook to the response hook.
func TestHitsReachTheAggregateEndpoint(t *testing.T) {
	_, raw := newKey(t, "turing@example.com")
	def := api(t, "")
	g := gateway.New()
	g.AddPolicy(gateway.Policy{ID: "pol-pay", OrgID: def.OrgID})
	codes := []int{200, 200, 200, 404, 500}
	const upstreamTime = 30 * time.Millisecond
	var keyHash string
	for _, code := range codes {
		keylensAPI := &gateway.API{Def: def, Auth: KeylensAuth, Response: []func(http.ResponseWriter, *http.Response, *http.Request){KeylensHits},
			Upstream: func(w http.ResponseWriter, r *http.Request) {
				keyHash = r.Header.Get("X-Key-Id")
				time.Sleep(upstreamTime) // the upstream's work, which the latency includes
				w.WriteHeader(code)
			}}
		if res := g.Do(t, keylensAPI, keyRequest(raw)); res.Code != code {
			t.Fatalf("answered %s, want %d", res.Describe(), code)
		}
	}
	// A request without a keylens session is not counted.
	KeylensHits(httptest.NewRecorder(), &http.Response{StatusCode: 200}, request(def, "", &user.SessionState{}, ""))

	today := time.Now().UTC().Format("2/1/2006")
	var got struct {
		Data []struct {
			Hits, Success, Error int64
			RequestTime          float64 `json:"request_time"`
		}
	}
	waitFor(t, "hits in the aggregate", func() bool {
		admin(t, "GET", "/api/activity/keys/aggregate/"+keyHash+"/"+today+"/"+today+"?api_id=api-pay", "", &got)
		return len(got.Data) == 1 && got.Data[0].Hits == int64(len(codes))
	})
	if d := got.Data[0]; d.Success != 3 || d.Error != 2 {
		t.Errorf("aggregate %+v, want 5 hits, 3 success, 2 errors", d)
	}
	if rt := got.Data[0].RequestTime; rt < float64(upstreamTime/time.Millisecond) || rt > 5000 {
		t.Errorf("request_time %v ms, want at least the upstream's %v", rt, upstreamTime)
	}
}

// The latency stamp survives the request copy the gateway makes when
// tracing (a shallow copy shares the header map), is taken once, and is
// not mistaken for another request's.
func TestLatencyStamps(t *testing.T) {
	st := &apiState{apiID: "a"}
	key := "cac572e018c60de0"
	r := httptest.NewRequest("GET", "/", nil)
	stamp(r, st, &key, clock.Mono()-int64(50*time.Millisecond))
	copied := r.WithContext(context.Background())
	gotSt, gotKey, d, ok := claimStamp(copied)
	if !ok || gotSt != st || gotKey != key || d < 50*time.Millisecond || d > time.Minute {
		t.Fatalf("claim: %v %v %q %v", ok, gotSt == st, gotKey, d)
	}
	if _, _, _, ok := claimStamp(r); ok {
		t.Error("a stamp was taken twice")
	}
	if _, _, _, ok := claimStamp(httptest.NewRequest("GET", "/", nil)); ok {
		t.Error("a request never stamped found a stamp")
	}
	// Another request in the same slot: the first finds nothing.
	// Every request tried is kept alive: a freed header map's address
	// comes back, and the search could cycle through a few forever.
	a, b := httptest.NewRequest("GET", "/", nil), httptest.NewRequest("GET", "/", nil)
	tried := []*http.Request{b}
	for slotOf(headerAddr(a.Header)) != slotOf(headerAddr(b.Header)) {
		if len(tried) > 1<<20 {
			t.Fatal("no two requests share a stamp slot")
		}
		b = httptest.NewRequest("GET", "/", nil)
		tried = append(tried, b)
	}
	stamp(a, st, &key, clock.Mono())
	stamp(b, st, &key, clock.Mono())
	if _, _, _, ok := claimStamp(a); ok {
		t.Error("a request took another's stamp")
	}
	if _, _, _, ok := claimStamp(b); !ok {
		t.Error("the latest stamp of a slot was lost")
	}
}

// TestPluginImportsOnlyWhatTheGatewayCanLoad: the plugin's own code may
// import the standard library, keylens's identity module (its packages
// included; they need only the standard library and golang-jwt) and the
// gateway's ctx, user, apidef and apidef/oas; never the double's gateway
// helper.
func TestPluginImportsOnlyWhatTheGatewayCanLoad(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/TykTechnologies/tyk/ctx": true, "github.com/TykTechnologies/tyk/user": true,
		"github.com/TykTechnologies/tyk/apidef": true, "github.com/TykTechnologies/tyk/apidef/oas": true,
		"github.com/keylens/keylens/identity": true,
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(imp, ".") && !allowed[imp] && !strings.HasPrefix(imp, "github.com/keylens/keylens/identity/") {
			t.Errorf("the plugin imports %s", imp)
		}
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if cond() {
			t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within 5s", what)
}

// TestHooksNeverCloneTheDefinition: the hooks read the definition pointer
// the gateway puts in the context; ctx.GetDefinition's deep copy (made by
// reflection on every call) stays off the request path.
func TestHooksNeverCloneTheDefinition(t *testing.T) {
	_, raw := newKey(t, "clone@example.com")
	def := api(t, "")
	before := gateway.DefinitionClones()
	r := request(def, "", nil, raw)
	if rec, next := gateway.RunHook(KeylensAuth, r); !next {
		t.Fatalf("refused: %d", rec.Code)
	}
	KeylensHits(httptest.NewRecorder(), &http.Response{StatusCode: 200}, r)
	r = request(def, raw, &user.SessionState{MetaData: map[string]interface{}{}}, "")
	gateway.RunHook(KeylensPostAuth, r)
	if n := gateway.DefinitionClones() - before; n != 0 {
		t.Errorf("the hooks cloned the API definition %d times", n)
	}
}

// keyRequest is a client request presenting key.
func keyRequest(key string) *http.Request {
	r := httptest.NewRequest("GET", "/pay", nil)
	r.Header.Set("Authorization", key)
	return r
}

// TestSessionCarriesTheAPIsOrg: the gateway looks a session's policies up
// in the session's org (Tyk 5.12+); keylens's own portal org holds none of
// them, and a policy not found ends the request with 200, an empty body
// and no upstream call, which the double reports as a failure.
func TestSessionCarriesTheAPIsOrg(t *testing.T) {
	_, raw := newKey(t, "org@example.com")
	def := api(t, "")
	g := gateway.New()
	g.AddPolicy(gateway.Policy{ID: "pol-pay", OrgID: def.OrgID})
	res := g.Do(t, &gateway.API{Def: def, Auth: KeylensAuth}, keyRequest(raw))
	if res.Code != 200 || res.Upstream == nil || res.Session.OrgID != def.OrgID || res.Upstream.Header.Get("X-Developer-Email") != "org@example.com" {
		t.Fatalf("%s; session org %q, want the API's %q", res.Describe(), res.Session.OrgID, def.OrgID)
	}
}

// TestKeyHashNeverLogsIn: whatever the plugin lets the gateway store, the
// key hash (sent upstream as X-Key-Id, shown in portal objects) never
// authenticates at an auth-token API of the same gateway, and after a
// revocation the key itself authenticates nowhere within a second — even
// where the gateway persists sessions by itself (a policy with a quota).
func TestKeyHashNeverLogsIn(t *testing.T) {
	for _, persist := range []bool{false, true} {
		t.Run(fmt.Sprintf("persist_session %v", persist), func(t *testing.T) {
			dev, raw := newKey(t, fmt.Sprintf("hash-%v@example.com", persist))
			def := api(t, fmt.Sprintf(`,"persist_session":%v`, persist))
			g := gateway.New()
			g.AddPolicy(gateway.Policy{ID: "pol-pay", OrgID: def.OrgID, QuotaMax: 1000})
			keylensAPI := &gateway.API{Def: def, Auth: KeylensAuth}
			plainAPI := &gateway.API{Def: &apidef.APIDefinition{APIID: "plain", OrgID: def.OrgID}}

			res := g.Do(t, keylensAPI, keyRequest(raw))
			if res.Upstream == nil {
				t.Fatalf("the key was refused: %s", res.Describe())
			}
			hash := res.Upstream.Header.Get("X-Key-Id")
			if hash == "" || hash == raw {
				t.Fatalf("X-Key-Id %q", hash)
			}
			if res := g.Do(t, plainAPI, keyRequest(hash)); res.Code < 400 {
				t.Fatalf("the key hash authenticates at an auth-token API: %s", res.Describe())
			}
			// What the gateway stored (it must have: a quota) is the key's
			// own session, under the key's hash, and short-lived.
			if keys := g.Redis.Keys(); len(keys) != 1 || keys[0] != "apikey-"+hash {
				t.Fatalf("stored %v, want only apikey-%s", keys, hash)
			}
			if s, _ := g.Redis.Session(hash); time.Until(time.Unix(s.Expires, 0)) > time.Second+sessionMargin || s.Expires == 0 {
				t.Errorf("the stored session expires at %d, %v from now", s.Expires, time.Until(time.Unix(s.Expires, 0)))
			}

			admin(t, "DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), "", nil)
			revoked := time.Now()
			waitFor(t, "revoked key refused by the plugin and at the auth-token API", func() bool {
				return g.Do(t, keylensAPI, keyRequest(raw)).Code == 401 && g.Do(t, plainAPI, keyRequest(raw)).Code >= 400
			})
			if d := time.Since(revoked); d > time.Second+sessionMargin+200*time.Millisecond {
				t.Errorf("the revoked key authenticated somewhere for %v", d)
			}
		})
	}
}

func TestKeyIDAndExpiry(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" // {"alg":"HS256"}
	for cred, want := range map[string]string{
		"eyJvcmciOiJ4In0=": "eyJvcmciOiJ4In0=", "Bearer abc": "abc", "bearer  abc": "abc", "Basic dXNlcjpwdw==": "Basic dXNlcjpwdw==",
		"Bearer": "Bearer", "Bearer " + jwt: "Bearer " + jwt,
		// An API key with two dots is a key, as the sidecar takes it.
		"Bearer abc.def.ghi": "abc.def.ghi", "Bearer eyJh.eyJz.c2ln": "eyJh.eyJz.c2ln",
	} {
		if got := keyIDOf(cred); got != want {
			t.Errorf("keyIDOf(%q) = %q, want %q", cred, got, want)
		}
	}
	sec := int64(time.Second)
	for _, now := range []int64{1000 * sec, 1000*sec + 1, 1000*sec + sec/2, 1000*sec + 899*sec/1000, 1000*sec + 901*sec/1000, 1001*sec - 1} {
		exp := sessionExpiry(now, 0) * sec
		if left := time.Duration(exp - now); left < sessionMargin || left > time.Second+sessionMargin {
			t.Errorf("at %d ns a session expires %v later", now, left)
		}
		if got := sessionExpiry(now, 900); got != 900 {
			t.Errorf("a credential expiring earlier: %d", got)
		}
	}
}

// TestRevocationReachesTheGatewayWithinASecond: the plugin's cache follows
// the change feed through the sidecar, so a revocation or a deactivation
// is refused in the gateway well within a second although cache_ttl (and
// negative_cache_ttl) are an hour here.
func TestRevocationReachesTheGatewayWithinASecond(t *testing.T) {
	dev, raw := newKey(t, "feed@example.com")
	def := api(t, `,"cache_ttl":"1h","negative_cache_ttl":"1h"`)
	auth := func() int {
		rec, _ := gateway.RunHook(KeylensAuth, request(def, "", nil, raw))
		return rec.Code
	}
	within := func(what string, want int) {
		t.Helper()
		start := time.Now()
		waitFor(t, what, func() bool { return auth() == want })
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("%s took %v", what, d)
		}
	}
	if code := auth(); code != 200 {
		t.Fatalf("known key: %d", code)
	}
	// Let the follower start (it drops what was cached before it knew its
	// position), then cache the key again.
	st := stateFor(def)
	waitFor(t, "the follower reads the feed", func() bool { return st.res.followed.Load() })
	if auth() != 200 || auth() != 200 {
		t.Fatal("known key refused")
	}

	var d map[string]any
	admin(t, "GET", "/api/portal/developers/"+dev, "", &d)
	d["inactive"] = true
	body, _ := json.Marshal(d)
	admin(t, "PUT", "/api/portal/developers/"+dev, string(body), nil)
	within("deactivation refused", 403)
	d["inactive"] = false
	body, _ = json.Marshal(d)
	admin(t, "PUT", "/api/portal/developers/"+dev, string(body), nil)
	within("reactivation accepted", 200)
	admin(t, "DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), "", nil)
	within("revocation refused", 401)
}

// TestNotASidecar: pointed at a service that is not a keylens sidecar (an
// echo server answering 200 with JSON, the admin API), the plugin lets no
// key through: KeylensAuth answers 503 and says in the log what is wrong.
func TestNotASidecar(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "headers": r.Header})
	}))
	defer echo.Close()
	plainSidecar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"developer_id":"d","key_id":"k","email":"x@example.com"}`)
	}))
	defer plainSidecar.Close()
	logs := captureLogs(t)
	for name, tt := range map[string]struct{ url, extra, says string }{
		"echo server":  {echo.URL, "", "not a keylens sidecar: the 200 answer names no developer_id and no key_id"},
		"admin API":    {kl.admin, "", "not a keylens sidecar: answered 401 without X-Keylens-Outcome"},
		"no assertion": {plainSidecar.URL, `,"assertions":true`, "sent no X-Developer-Assertion"},
	} {
		def := api(t, tt.extra)
		def.ConfigData["keylens"].(map[string]interface{})["sidecar_url"] = tt.url
		for _, key := range []string{"bogus-key-123", "another-bogus-key"} {
			if rec, next := gateway.RunHook(KeylensAuth, request(def, "", nil, key)); next || rec.Code != 503 {
				t.Errorf("%s: %s got %d, want 503", name, key, rec.Code)
			}
		}
		if !strings.Contains(logs.String(), tt.says) {
			t.Errorf("%s: the log does not say %q:\n%s", name, tt.says, logs.String())
		}
		if strings.Contains(logs.String(), "bogus-key") {
			t.Errorf("%s: a raw key reached the log", name)
		}
	}
	// Assertions on, against the real sidecar (started with --assertions).
	_, raw := newKey(t, "asserted@example.com")
	if rec, next := gateway.RunHook(KeylensAuth, request(api(t, `,"assertions":true`), "", nil, raw)); !next {
		t.Errorf("assertions on, real sidecar: %d %s", rec.Code, rec.Body)
	}
}

// captureLogs sends the plugin's log to a buffer for the test.
func captureLogs(t *testing.T) *syncBuffer {
	t.Helper()
	b := &syncBuffer{}
	logger.SetOutput(b)
	t.Cleanup(func() { logger.SetOutput(os.Stderr) })
	return b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSidecarDown: KeylensAuth cannot authenticate without the sidecar
// (503); KeylensPostAuth, behind a key the gateway authenticated itself,
// passes without identity headers by default, or answers 503 with
// sidecar_down "refuse".
func TestSidecarDown(t *testing.T) {
	captureLogs(t)
	down := func(extra string) *apidef.APIDefinition {
		def := api(t, extra)
		def.ConfigData["keylens"].(map[string]interface{})["sidecar_url"] = "http://127.0.0.1:1"
		return def
	}
	for _, tt := range []struct {
		extra    string
		postAuth int // 0: passes
	}{{"", 0}, {`,"sidecar_down":"pass"`, 0}, {`,"sidecar_down":"refuse"`, 503}} {
		def := down(tt.extra)
		if rec, next := gateway.RunHook(KeylensAuth, request(def, "", nil, "some-key")); next || rec.Code != 503 {
			t.Errorf("%s: auth with the sidecar down: %d", tt.extra, rec.Code)
		}
		r := request(def, "some-key", &user.SessionState{MetaData: map[string]interface{}{}}, "")
		rec, next := gateway.RunHook(KeylensPostAuth, r)
		switch {
		case tt.postAuth == 0 && (!next || rec.Code != 200):
			t.Errorf("%s: post-auth with the sidecar down: %d, want a pass", tt.extra, rec.Code)
		case tt.postAuth != 0 && (next || rec.Code != tt.postAuth):
			t.Errorf("%s: post-auth with the sidecar down: %d, want %d", tt.extra, rec.Code, tt.postAuth)
		}
		if r.Header.Get("X-Developer-Id") != "" || r.Header.Get("X-Developer-Field-Plan") != "" {
			t.Errorf("%s: client-sent identity headers passed: %v", tt.extra, r.Header)
		}
	}
	if _, err := parseSettings(map[string]interface{}{"keylens": map[string]interface{}{"sidecar_down": "ignore"}}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), `sidecar_down must be "pass" or "refuse"`) {
		t.Errorf("a bad sidecar_down: %v", err)
	}
}

// TestRotatedKeyInThePlugin: during a rotation's grace both keys
// authenticate in the gateway to the same developer, each naming itself
// in X-Key-Id, and the old key's session ends by its grace end at the
// latest; after the end the old key is refused within a second, though
// the plugin caches for an hour.
func TestRotatedKeyInThePlugin(t *testing.T) {
	dev, raw := newKey(t, "rotate@example.com")
	def := api(t, `,"cache_ttl":"1h","negative_cache_ttl":"1h"`)
	st := stateFor(def)
	auth := func(key string) (int, *http.Request) {
		r := request(def, "", nil, key)
		rec, _ := gateway.RunHook(KeylensAuth, r)
		return rec.Code, r
	}
	if code, _ := auth(raw); code != 200 {
		t.Fatalf("known key: %d", code)
	}
	waitFor(t, "the follower reads the feed", func() bool { return st.res.followed.Load() })
	var rot struct {
		RawKey        string    `json:"RawKey"`
		KeyID         string    `json:"key_id"`
		Replaces      string    `json:"replaces"`
		OldKeyExpires time.Time `json:"old_key_expires"`
	}
	admin(t, "POST", "/api/keylens/developers/"+dev+"/keys/"+url.PathEscape(raw)+"/rotate", `{"grace_period":"3s"}`, &rot)
	for key, hash := range map[string]string{raw: rot.Replaces, rot.RawKey: rot.KeyID} {
		var code int
		var r *http.Request
		waitFor(t, "the key's rotation reaches the plugin", func() bool {
			code, r = auth(key)
			s := ctx.GetSession(r)
			return code == 200 && (key != raw || (s != nil && s.Expires <= rot.OldKeyExpires.Unix()))
		})
		if s := ctx.GetSession(r); s == nil || s.MetaData["tyk_developer_id"] != dev || r.Header.Get("X-Key-Id") != hash {
			t.Errorf("key %s: session %+v, X-Key-Id %q", hash, s, r.Header.Get("X-Key-Id"))
		}
	}
	for {
		code, _ := auth(raw)
		now := time.Now()
		if code == 401 {
			if now.Before(rot.OldKeyExpires) {
				t.Fatalf("refused at %v, before the end %v", now, rot.OldKeyExpires)
			}
			break
		}
		if code != 200 || now.After(rot.OldKeyExpires.Add(time.Second)) {
			t.Fatalf("the old key answers %d at %v (its end %v)", code, now, rot.OldKeyExpires)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := auth(rot.RawKey); code != 200 {
		t.Errorf("the new key after the old one's end: %d", code)
	}
}
