package tests

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// Tyk gateway provisioning, end to end: the real keylens binary against
// the double of the gateway's REST API (tykdouble/gatewayapi, run as its
// own process over loopback, killed and restarted on its state file as a
// gateway keeps its keys in Redis).

const (
	gwOrg    = "5e9d9544a1dcd60001d0ed20"
	gwSecret = "gateway-secret-0123"
)

// gwConfig is the double's configuration: keys hashed with hashFn, one
// auth-token API, one OAuth API, and a policy per catalogue entry plus an
// inactive one.
func gwConfig(hashFn string) map[string]any {
	rights := func(api string) map[string]any { return map[string]any{api: map[string]any{"api_id": api}} }
	pol := func(id, api string, inactive bool) map[string]any {
		return map[string]any{"id": id, "org_id": gwOrg, "is_inactive": inactive, "quota_max": 1000, "access_rights": rights(api)}
	}
	return map[string]any{
		"secret": gwSecret, "hash_keys": true, "hash_key_function": hashFn, "enable_hashed_keys_listing": true,
		"policies": []any{pol("pol-token", "api-token", false), pol("pol-gold", "api-token", false), pol("pol-basic", "api-token", false),
			pol("pol-jwt", "api-token", false), pol("pol-oauth", "api-oauth", false), pol("pol-inactive", "api-token", true)},
		"apis": []any{map[string]any{"api_id": "api-token", "org_id": gwOrg}, map[string]any{"api_id": "api-oauth", "org_id": gwOrg, "use_oauth2": true}},
	}
}

var (
	gwBinOnce sync.Once
	gwBin     string
	gwBinErr  error
)

// gateway is one running double.
type gateway struct {
	t          testing.TB
	URL        string
	cfg, state string
	cmd        *exec.Cmd
	done       chan struct{}
}

// startGateway starts a double with gwConfig(hashFn), changed by edits.
func startGateway(t testing.TB, hashFn string, edits ...func(cfg map[string]any)) *gateway {
	t.Helper()
	gwBinOnce.Do(func() {
		gwBin = filepath.Join(filepath.Dir(keylensBin), "tykgateway")
		work, _ := filepath.Abs("tykdouble/go.work")
		build := exec.Command("go", "build", "-o", gwBin, "./cmd/tykgateway")
		build.Dir, build.Env = "tykdouble", append(os.Environ(), "GOWORK="+work)
		if out, err := build.CombinedOutput(); err != nil {
			gwBinErr = fmt.Errorf("building the gateway double: %v\n%s", err, out)
		}
	})
	if gwBinErr != nil {
		t.Fatal(gwBinErr)
	}
	dir := t.TempDir()
	g := &gateway{t: t, cfg: filepath.Join(dir, "gw.json"), state: filepath.Join(dir, "state.json")}
	cfg := gwConfig(hashFn)
	for _, edit := range edits {
		edit(cfg)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(g.cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	g.start("127.0.0.1:0")
	return g
}

func (g *gateway) start(addr string) {
	g.t.Helper()
	ready := filepath.Join(g.t.TempDir(), "ready")
	g.cmd = exec.Command(gwBin, "-config", g.cfg, "-state", g.state, "-addr", addr, "-ready-file", ready)
	g.cmd.Stderr = os.Stderr
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.done = make(chan struct{})
	go func() { g.cmd.Wait(); close(g.done) }()
	g.t.Cleanup(g.kill)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil {
			g.URL = string(b)
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatal("gateway double not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill stops the double as a crash would; restart brings it back on the
// same address and state.
func (g *gateway) kill() {
	_ = g.cmd.Process.Kill()
	<-g.done
}

func (g *gateway) restart() { g.start(strings.TrimPrefix(g.URL, "http://")) }

// call sends one request to the gateway's API with the secret.
func (g *gateway) call(method, path string, body any) (int, map[string]any) {
	g.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, g.URL+path, rd)
	req.Header.Set("X-Tyk-Authorization", gwSecret)
	r := send(g.t, req)
	var out map[string]any
	_ = json.Unmarshal(r.Body, &out)
	return r.Status, out
}

// session is the gateway's session of hash, nil when it has none.
func (g *gateway) session(hash string) map[string]any {
	g.t.Helper()
	status, s := g.call("GET", "/tyk/keys/"+hash+"?hashed=true", nil)
	if status == 404 {
		return nil
	} else if status != 200 {
		g.t.Fatalf("GET key %s: %d %v", hash, status, s)
	}
	return s
}

// authenticate asks the double whether a request with header h to api
// passes the gateway's auth: the status and message.
func (g *gateway) authenticate(api string, h http.Header) (int, map[string]any) {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/double/authenticate?api_id="+api, nil)
	req.Header = h
	r := send(g.t, req)
	var out map[string]any
	_ = json.Unmarshal(r.Body, &out)
	return r.Status, out
}

type gwLogged struct {
	At     time.Time
	Method string
	Path   string
	Status int
	Form   string
}

func (g *gateway) log() []gwLogged {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/double/log", nil)
	return decodeAs[[]gwLogged](g.t, send(g.t, req))
}

func (g *gateway) clients() map[string]any {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/double/state", nil)
	return decodeAs[struct{ Clients map[string]any }](g.t, send(g.t, req)).Clients
}

func policiesOf(s map[string]any) []string {
	var out []string
	for _, p := range s["apply_policies"].([]any) {
		out = append(out, p.(string))
	}
	return out
}

// tykProvisioned starts keylens provisioning into g, with testCatalogue
// and one developer.
func tykProvisioned(t testing.TB, g *gateway, store string, args ...string) *instance {
	t.Helper()
	return startKeylens(t, store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_TYK_SECRET=" + gwSecret},
		append([]string{"--org-id", gwOrg, "--tyk-gateway", g.URL, "--tyk-inactive-policy", "pol-inactive"}, args...)...)
}

func hs256(kid, secret string) string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"` + kid + `"}`))
	p := enc.EncodeToString([]byte(`{"sub":"ada"}`))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(h + "." + p))
	return h + "." + p + "." + enc.EncodeToString(mac.Sum(nil))
}

// TestTykApprovalCreatesEachAuthType: each auth type's approval creates
// the credential in the gateway, under keylens's own hash, with the
// developer's metadata; the gateway then authenticates it in its own mode.
func TestTykApprovalCreatesEachAuthType(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com","fields":{"Company":"Analytical Engines"}}`)

	t.Run("authToken", func(t *testing.T) {
		a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"],"fields":{"Use case":"billing"}}`))
		hash := keylens.HashKey(a.RawKey)
		s := g.session(hash)
		if s == nil {
			t.Fatalf("key %s not in the gateway", hash)
		}
		meta := s["meta_data"].(map[string]any)
		if s["alias"] != "ada@example.com" || s["org_id"] != gwOrg || !slices.Equal(policiesOf(s), []string{"pol-token"}) ||
			meta["tyk_developer_id"] != dev || meta["tyk_developer_email"] != "ada@example.com" ||
			meta["tyk_key_request_fields"].(map[string]any)["Use case"] != "billing" ||
			meta["tyk_user_fields"].(map[string]any)["Company"] != "Analytical Engines" ||
			meta["tyk_key_request_fields_Use_case"] != "billing" || meta["tyk_user_fields_Company"] != "Analytical Engines" {
			t.Errorf("session %v", s)
		}
		if st, out := g.authenticate("api-token", http.Header{"Authorization": {a.RawKey}}); st != 200 || out["alias"] != "ada@example.com" {
			t.Errorf("raw key at the gateway: %d %v", st, out)
		}
	})
	t.Run("basic", func(t *testing.T) {
		a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-basic"]}`))
		hash := keylens.HashKey(keylens.KeyFor(gwOrg, a.RawKey, "murmur64"))
		s := g.session(hash)
		if s == nil || strings.Contains(fmt.Sprint(s["basic_auth_data"]), a.Password) {
			t.Fatalf("basic session %v (the gateway must hold the password hashed)", s)
		}
		h := http.Header{}
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(a.RawKey, a.Password)
		h.Set("Authorization", req.Header.Get("Authorization"))
		if st, out := g.authenticate("api-token", h); st != 200 {
			t.Errorf("basic credentials at the gateway: %d %v", st, out)
		}
		req.SetBasicAuth(a.RawKey, "wrong")
		if st, _ := g.authenticate("api-token", http.Header{"Authorization": {req.Header.Get("Authorization")}}); st != 401 {
			t.Errorf("wrong basic password: %d", st)
		}
	})
	t.Run("jwt", func(t *testing.T) {
		secret := "a-long-enough-hmac-secret-0123456789"
		a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-jwt"],"jwt_secret":"`+secret+`"}`))
		if s := g.session(keylens.HashKey(a.RawKey)); s == nil || s["jwt_data"].(map[string]any)["secret"] != secret {
			t.Fatalf("jwt session %v", s)
		}
		if st, out := g.authenticate("api-token", http.Header{"Authorization": {"Bearer " + hs256(a.RawKey, secret)}}); st != 200 {
			t.Errorf("JWT at the gateway: %d %v", st, out)
		}
		if st, _ := g.authenticate("api-token", http.Header{"Authorization": {"Bearer " + hs256(a.RawKey, "another-secret-0123456789abcdef")}}); st != 403 {
			t.Errorf("JWT with a wrong signature: %d", st)
		}
	})
	t.Run("oauth", func(t *testing.T) {
		a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys",
			`{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"https://app.example.com/cb"},"fields":{"oauth_app_description":"My App"}}`))
		c, ok := g.clients()["api-oauth/"+a.ClientID].(map[string]any)
		if !ok || c["secret"] != a.Secret || c["redirect_uri"] != "https://app.example.com/cb" || c["policy_id"] != "pol-oauth" ||
			c["description"] != "My App" || c["meta_data"].(map[string]any)["tyk_developer_id"] != dev {
			t.Fatalf("gateway clients %v", g.clients())
		}

		// The gateway issues this client's tokens: the Tyk Classic Portal API's revocations
		// go to it, as forms with the client's org; revoke_all only with
		// the client's secret (the gateway would answer 200 to a wrong one).
		revocations := func() []gwLogged {
			var out []gwLogged
			for _, l := range g.log() {
				if strings.HasPrefix(l.Path, "/tyk/oauth/revoke") {
					out = append(out, l)
				}
			}
			return out
		}
		// keylens's sidecar issues tokens to the client too: revoke_all
		// revokes those as well.
		r := postForm(t, in.SidecarURL+"/oauth/token", url.Values{"grant_type": {"client_credentials"}},
			"Basic "+base64.StdEncoding.EncodeToString([]byte(a.ClientID+":"+a.Secret)))
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if r.Status != 200 || json.Unmarshal(r.Body, &tok) != nil || tok.AccessToken == "" {
			t.Fatalf("a sidecar token: %d %s", r.Status, r.Body)
		}
		eventually(t, in, "Bearer "+tok.AccessToken, http.StatusOK, dev)
		wantEnvelope(t, in.do("POST", "/oauth-clients/"+a.ClientID+"/revoke", `{"token":"gw-issued-token","token_type_hint":"access_token"}`),
			200, "OK", "token revoked successfully")
		wantEnvelope(t, in.do("POST", "/oauth-clients/"+a.ClientID+"/revoke_all", `{"client_secret":"wrong"}`), 401, "Error", "")
		wantEnvelope(t, in.do("POST", "/oauth-clients/"+a.ClientID+"/revoke_all", `{"client_secret":"`+a.Secret+`"}`),
			200, "OK", "tokens revoked successfully")
		wantEnvelope(t, in.do("POST", "/oauth-clients/no-such-client/revoke", `{"token":"t"}`), 404, "Error", "")
		eventually(t, in, "Bearer "+tok.AccessToken, http.StatusUnauthorized, "")
		got := revocations()
		if len(got) != 2 || got[0].Path != "/tyk/oauth/revoke" || got[1].Path != "/tyk/oauth/revoke_all" {
			t.Fatalf("revocations at the gateway: %+v", got)
		}
		one, _ := url.ParseQuery(got[0].Form)
		all, _ := url.ParseQuery(got[1].Form)
		if one.Get("token") != "gw-issued-token" || one.Get("token_type_hint") != "access_token" || one.Get("client_id") != a.ClientID || one.Get("org_id") != gwOrg ||
			all.Get("client_id") != a.ClientID || all.Get("client_secret") != a.Secret || all.Get("org_id") != gwOrg {
			t.Errorf("revocation forms %q, %q", got[0].Form, got[1].Form)
		}

		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/oauth/"+a.ClientID, ""), 200, "OK", "Data deleted")
		waitFor(t, 5*time.Second, "OAuth client deleted at the gateway", func() bool { return g.clients()["api-oauth/"+a.ClientID] == nil })
	})
	t.Run("refused", func(t *testing.T) {
		// A policy the gateway lacks: 502 with the gateway's reason, and
		// nothing stored in keylens.
		wantEnvelope(t, in.do("POST", "/api/portal/catalogue", strings.Replace(testCatalogue, `"policy_id":"pol-gold"`, `"policy_id":"pol-nowhere"`, 1)), 200, "OK", "")
		before := len(getDeveloper(t, in, dev).Keys)
		e := wantEnvelope(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-nowhere"]}`), 502, "Error", "")
		if !strings.Contains(e.Message, "policy not found") {
			t.Errorf("502 message %q does not carry the gateway's reason", e.Message)
		}
		if got := len(getDeveloper(t, in, dev).Keys); got != before {
			t.Errorf("a refused approval stored a key: %d → %d", before, got)
		}
	})
}

// TestTykCentralJWTKey: with central JWT, a jwt request approved without a
// secret creates a key named by the id the identity provider puts in its
// tokens, carrying the developer's policies and metadata, with no JWT
// material of its own (the API's jwt_source verifies the tokens).
func TestTykCentralJWTKey(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "", "--jwt-hmac-secret", "an-identity-providers-hmac-secret-0123456789")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-jwt"]}`))
	s := g.session(keylens.HashKey(a.RawKey))
	if s == nil {
		t.Fatalf("central JWT key %s not in the gateway", a.RawKey)
	}
	if _, has := s["jwt_data"]; has || !slices.Equal(policiesOf(s), []string{"pol-jwt"}) ||
		s["meta_data"].(map[string]any)["tyk_developer_id"] != dev {
		t.Errorf("central JWT session %v", s)
	}
}

// TestTykHashMismatchRefused: a gateway whose hash_key_function is not
// keylens's --key-hash-algorithm stores another key: the approval is
// refused, the key it created removed, and nothing stored in keylens.
func TestTykHashMismatchRefused(t *testing.T) {
	g := startGateway(t, "sha256")
	in := tykProvisioned(t, g, "") // keylens: murmur64
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	for _, body := range []string{`{"apply_policies":["pol-token"]}`, `{"apply_policies":["pol-basic"]}`} {
		e := wantEnvelope(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", body), 502, "Error", "")
		if !strings.Contains(e.Message, "hash_key_function") || !strings.Contains(e.Message, "--key-hash-algorithm") {
			t.Errorf("message %q does not name the mismatch", e.Message)
		}
	}
	if d := getDeveloper(t, in, dev); len(d.Keys) != 0 {
		t.Errorf("keys stored: %v", d.Keys)
	}
	if _, l := g.call("GET", "/tyk/keys", nil); len(l["keys"].([]any)) != 0 {
		t.Errorf("the gateway kept %v", l["keys"])
	}
}

// TestTykSecretRefused: a wrong secret stops keylens at start with exit 2.
func TestTykSecretRefused(t *testing.T) {
	g := startGateway(t, "murmur64")
	cmd := exec.Command(keylensBin, "serve", "--store", "sqlite:"+filepath.Join(t.TempDir(), "k.db"), "--admin-addr", "127.0.0.1:0",
		"--sidecar-addr", "127.0.0.1:0", "--tyk-gateway", g.URL)
	cmd.Env = append(cleanEnv(), "KEYLENS_ADMIN_KEY="+testAdminKey, "KEYLENS_TYK_SECRET=not-the-secret")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "refused --tyk-secret") {
		t.Errorf("exit %v, output:\n%s", err, out)
	}
}

// TestTykLaterChanges: every later change reaches the gateway by hash.
func TestTykLaterChanges(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com","fields":{"Company":"AE"}}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	hash := keylens.HashKey(a.RawKey)
	o := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"https://app.example.com/cb"}}`))
	auth := http.Header{"Authorization": {a.RawKey}}

	// Traffic used some quota.
	s := g.session(hash)
	s["quota_remaining"] = 7
	if st, out := g.call("PUT", "/tyk/keys/"+hash+"?hashed=1&suppress_reset=1", s); st != 200 {
		t.Fatalf("PUT: %d %v", st, out)
	}

	// Policy change: swapped, quota counters kept.
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev+"/keys/"+hash, `{"apply_policies":["pol-gold"]}`), 200, "OK", "Data updated")
	waitFor(t, 5*time.Second, "policy change at the gateway", func() bool { return slices.Equal(policiesOf(g.session(hash)), []string{"pol-gold"}) })
	if q := g.session(hash)["quota_remaining"]; fmt.Sprint(q) != "7" {
		t.Errorf("quota_remaining %v after a policy change, want 7", q)
	}

	// Field edit, then deactivation: the inactive policy replaces the
	// developer's; the gateway refuses the key; reactivation restores.
	setDev := func(edit func(d map[string]any)) {
		d := decodeAs[map[string]any](t, in.do("GET", "/api/portal/developers/"+dev, ""))
		edit(d)
		b, _ := json.Marshal(d)
		wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev, string(b)), 200, "OK", "Data updated")
	}
	setDev(func(d map[string]any) {
		d["fields"] = map[string]any{"Company": "Difference Engines"}
		d["email"] = "ada@lovelace.example"
	})
	waitFor(t, 5*time.Second, "field edit at the gateway", func() bool {
		s := g.session(hash)
		return s["alias"] == "ada@lovelace.example" && s["meta_data"].(map[string]any)["tyk_user_fields_Company"] == "Difference Engines"
	})
	// The edit rewrote the developer, recording its OAuth client as
	// removed and re-added: the client stays at the gateway.
	if g.clients()["api-oauth/"+o.ClientID] == nil {
		t.Error("rewriting the developer deleted its OAuth client at the gateway")
	}
	setDev(func(d map[string]any) { d["inactive"] = true })
	waitFor(t, 5*time.Second, "deactivation at the gateway", func() bool { return slices.Equal(policiesOf(g.session(hash)), []string{"pol-inactive"}) })
	if st, out := g.authenticate("api-token", auth); st != 403 || out["message"] != "Key is inactive, please renew" {
		t.Errorf("deactivated developer's key: %d %v", st, out)
	}
	setDev(func(d map[string]any) { d["inactive"] = false })
	// Deactivation deleted the OAuth client at the gateway (after
	// revoking its tokens); reactivation creates it again.
	waitFor(t, 5*time.Second, "reactivation at the gateway", func() bool {
		return slices.Equal(policiesOf(g.session(hash)), []string{"pol-gold"}) && g.clients()["api-oauth/"+o.ClientID] != nil
	})
	if st, out := g.authenticate("api-token", auth); st != 200 {
		t.Errorf("reactivated developer's key: %d %v", st, out)
	}
	if q := g.session(hash)["quota_remaining"]; fmt.Sprint(q) != "7" {
		t.Errorf("quota_remaining %v after metadata changes, want 7", q)
	}

	// Revoke; then developer deletion takes its other key and OAuth client.
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 200, "OK", "Data deleted")
	waitFor(t, 5*time.Second, "revoke at the gateway", func() bool { return g.session(hash) == nil })
	b := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev, ""), 200, "OK", "")
	waitFor(t, 5*time.Second, "developer deletion at the gateway", func() bool {
		return g.session(keylens.HashKey(b.RawKey)) == nil && g.clients()["api-oauth/"+o.ClientID] == nil
	})
	var metrics string
	waitFor(t, 5*time.Second, "no change pending", func() bool {
		metrics = string(in.sidecar("GET", "/metrics", nil, nil).Body)
		return strings.Contains(metrics, "keylens_tyk_gateway_changes_pending 0")
	})
	for _, want := range []string{"keylens_tyk_gateway_oldest_pending_seconds 0",
		"keylens_tyk_gateway_changes_applied_total", "keylens_tyk_gateway_change_failures_total 0", "keylens_tyk_gateway_apply_delay_seconds_count"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestTykRefusedChangeDoesNotHoldBackRevokes: an inactive policy the
// gateway lacks makes it refuse the deactivation (500, policy not found):
// after a few attempts the change is skipped, counted and logged, and a
// later revoke still reaches the gateway.
func TestTykRefusedChangeDoesNotHoldBackRevokes(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_TYK_SECRET=" + gwSecret},
		"--org-id", gwOrg, "--tyk-gateway", g.URL, "--tyk-inactive-policy", "pol-missing")
	if !strings.Contains(in.stderr.String(), "--tyk-inactive-policy is not in the Tyk gateway") {
		t.Errorf("no start-up warning about the missing inactive policy:\n%s", in.stderr)
	}
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	ada := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	decodeApproval(t, in.do("POST", "/api/portal/developers/"+ada+"/keys", `{"apply_policies":["pol-token"]}`))
	bob := createDeveloper(t, in, `{"email":"bob@example.com"}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+bob+"/keys", `{"apply_policies":["pol-token"]}`))
	hash := keylens.HashKey(a.RawKey)
	d := decodeAs[map[string]any](t, in.do("GET", "/api/portal/developers/"+ada, ""))
	d["inactive"] = true
	body, _ := json.Marshal(d)
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+ada, string(body)), 200, "OK", "Data updated")
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+bob+"/keys/"+hash, ""), 200, "OK", "Data deleted")
	waitFor(t, 20*time.Second, "the revoke applied after the refused change", func() bool { return g.session(hash) == nil })
	refused := 0
	for _, l := range g.log() {
		if l.Status == 500 {
			refused++
		}
	}
	if refused != 5 {
		t.Errorf("the refused change was tried %d times, want 5: %+v", refused, g.log())
	}
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	if !strings.Contains(metrics, `keylens_tyk_gateway_changes_skipped_total{reason="refused"} 1`) || !strings.Contains(in.stderr.String(), "the Tyk gateway refused a change") {
		t.Errorf("the skipped change is not counted or logged:\n%s", in.stderr)
	}
}

// TestTykGatewayDownAndKeylensKilled: with the gateway down approvals fail
// with 502 and store nothing, changes queue; keylens killed with changes
// pending applies them, in order and once each, when it and the gateway
// are back.
func TestTykGatewayDownAndKeylensKilled(t *testing.T) {
	g := startGateway(t, "murmur64")
	store := "sqlite:" + filepath.Join(t.TempDir(), "keylens.db")
	in := tykProvisioned(t, g, store)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	var hashes []string
	for range 4 {
		a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
		hashes = append(hashes, keylens.HashKey(a.RawKey))
	}
	g.kill()
	e := wantEnvelope(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`), 502, "Error", "")
	if !strings.Contains(e.Message, "Tyk gateway") {
		t.Errorf("502 message %q", e.Message)
	}
	if n := len(getDeveloper(t, in, dev).Keys); n != 4 {
		t.Errorf("%d keys after a failed approval, want 4", n)
	}
	// Changes while it is down: policy change on 0 then back, revoke 1
	// and 2, policy change on 3.
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev+"/keys/"+hashes[0], `{"apply_policies":["pol-gold"]}`), 200, "OK", "Data updated")
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev+"/keys/"+hashes[0], `{"apply_policies":["pol-token"]}`), 200, "OK", "Data updated")
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hashes[1], ""), 200, "OK", "Data deleted")
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hashes[2], ""), 200, "OK", "Data deleted")
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev+"/keys/"+hashes[3], `{"apply_policies":["pol-gold"]}`), 200, "OK", "Data updated")
	time.Sleep(300 * time.Millisecond) // a few retries fail
	in.kill()

	g.restart()
	in = tykProvisioned(t, g, store)
	waitFor(t, 10*time.Second, "queued changes applied after the restart", func() bool {
		return g.session(hashes[1]) == nil && g.session(hashes[2]) == nil &&
			slices.Equal(policiesOf(g.session(hashes[3])), []string{"pol-gold"})
	})
	if p := policiesOf(g.session(hashes[0])); !slices.Equal(p, []string{"pol-token"}) {
		t.Errorf("key 0 has %v: the two policy changes were not applied in order", p)
	}
	// Once each: one successful DELETE per revoked key, and the order of
	// the writes that reached the gateway is the order of the changes.
	var writes []string
	deletes := map[string]int{}
	for _, l := range g.log() {
		if l.Method != "GET" && l.Status == 200 {
			writes = append(writes, l.Method+" "+l.Path)
		}
		if l.Method == "DELETE" && l.Status == 200 {
			deletes[strings.TrimPrefix(l.Path, "/tyk/keys/")]++
		}
	}
	if deletes[hashes[1]] != 1 || deletes[hashes[2]] != 1 || len(deletes) != 2 {
		t.Errorf("deletes %v, want one each for keys 1 and 2", deletes)
	}
	want := []string{"DELETE /tyk/keys/" + hashes[1], "DELETE /tyk/keys/" + hashes[2], "POST /tyk/keys/policy/" + hashes[3]}
	if got := writes[len(writes)-len(want):]; !slices.Equal(got, want) {
		t.Errorf("writes after the restart end %v, want %v", got, want)
	}
}

// TestTykSync: tyk sync finds each kind of drift and --fix repairs what it
// can.
func TestTykSync(t *testing.T) {
	g := startGateway(t, "murmur64")
	store := "sqlite:" + filepath.Join(t.TempDir(), "keylens.db")
	in := tykProvisioned(t, g, store)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", strings.Replace(testCatalogue, `"policy_id":"pol-gold"`, `"policy_id":"pol-nowhere"`, 1)), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	var hashes []string
	for range 3 {
		a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
		hashes = append(hashes, keylens.HashKey(a.RawKey))
	}
	// A live OAuth access token the gateway issued: its session names the
	// client and copies its metadata (the developer id), but it is no key.
	o := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"https://app.example.com/cb"}}`))
	st, tok := g.token("api-oauth", o.ClientID, o.Secret)
	if st != 200 || g.bearer("api-oauth", tok) != 200 {
		t.Fatalf("a gateway token: %d", st)
	}
	in.stop()
	// Drift made behind keylens's back.
	g.call("POST", "/tyk/keys/policy/"+hashes[0], map[string]any{"apply_policies": []string{"pol-gold"}})
	s := g.session(hashes[1])
	s["alias"] = "someone@else.example"
	g.call("PUT", "/tyk/keys/"+hashes[1]+"?hashed=1&suppress_reset=1", s)
	g.call("DELETE", "/tyk/keys/"+hashes[2]+"?hashed=1", nil)
	_, orphan := g.call("POST", "/tyk/keys/0123456789abcdef0123456789abcdef", map[string]any{"org_id": gwOrg, "apply_policies": []string{"pol-token"},
		"meta_data": map[string]any{"tyk_developer_id": "gone-developer"}})

	sync := func(args ...string) (int, string) {
		cmd := exec.Command(keylensBin, append([]string{"tyk", "sync", "--store", store, "--tyk-gateway", g.URL, "--tyk-inactive-policy", "pol-inactive"}, args...)...)
		cmd.Env = append(cleanEnv(), "KEYLENS_TYK_SECRET="+gwSecret)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	code, out := sync()
	orphanHash := orphan["key_hash"].(string)
	for _, want := range []string{"policy missing pol-nowhere", "policies differ " + hashes[0], "metadata differs " + hashes[1],
		"missing " + hashes[2], "cannot be recreated", "only in gateway " + orphanHash} {
		if !strings.Contains(out, want) {
			t.Errorf("sync output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || strings.Contains(out, "[fixed]") {
		t.Errorf("sync without --fix: exit %d\n%s", code, out)
	}
	if strings.Contains(out, keylens.HashKey(tok)) {
		t.Errorf("sync took a live OAuth access token for a key:\n%s", out)
	}
	code, out = sync("--fix")
	if code != 1 || !strings.Contains(out, "policies differ "+hashes[0]) || !strings.Contains(out, "[fixed]") {
		t.Errorf("sync --fix: exit %d\n%s", code, out)
	}
	if p := policiesOf(g.session(hashes[0])); !slices.Equal(p, []string{"pol-token"}) || g.session(hashes[1])["alias"] != "ada@example.com" || g.session(orphanHash) != nil {
		t.Errorf("after --fix: %v %v %v", p, g.session(hashes[1])["alias"], g.session(orphanHash))
	}
	if st := g.bearer("api-oauth", tok); st != 200 {
		t.Errorf("the live token after sync --fix: %d", st)
	}
	// What is left cannot be fixed: the missing key and policy.
	_, out = sync()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	if len(lines) != 3 || !strings.Contains(out, "missing "+hashes[2]) || !strings.Contains(out, "policy missing pol-nowhere") {
		t.Errorf("after --fix, sync reports:\n%s", out)
	}
}

// BenchmarkTykApplyDelay measures the time from a revoke committing (its
// answer) to the gateway receiving the DELETE, over 200 revokes a round,
// and reports p50 and p99:
// go test -run NONE -bench TykApplyDelay -benchtime 1x -count 4 ./tests/
func BenchmarkTykApplyDelay(b *testing.B) {
	for range b.N {
		tykApplyDelay(b)
	}
}

func tykApplyDelay(b *testing.B) {
	t := testing.TB(b)
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	const n = 200
	committed := map[string]time.Time{}
	for range n {
		a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
		hash := keylens.HashKey(a.RawKey)
		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 200, "OK", "Data deleted")
		committed[hash] = time.Now()
		time.Sleep(5 * time.Millisecond)
	}
	var delays []time.Duration
	waitFor(t, 10*time.Second, "every revoke at the gateway", func() bool {
		delays = delays[:0]
		for _, l := range g.log() {
			if at, ok := committed[strings.TrimPrefix(l.Path, "/tyk/keys/")]; ok && l.Method == "DELETE" {
				delays = append(delays, max(l.At.Sub(at), 0))
			}
		}
		return len(delays) == n
	})
	slices.Sort(delays)
	b.ReportMetric(float64(delays[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(delays[n*99/100].Microseconds())/1000, "p99-ms")
}

// TestTykKeyRotation: with --tyk-gateway, a rotation creates the new key
// in the gateway before it answers; the old key gets its grace end as
// expires, works at the gateway until then, is refused after, and is
// deleted once keylens removes it. A gateway that is down fails the
// rotation with 502 and nothing is stored.
func TestTykKeyRotation(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	oldHash := keylens.HashKey(a.RawKey)

	rot := rotate(t, in, dev, oldHash, "3s")
	end := rot.OldKeyExpires
	if s := g.session(rot.KeyID); s == nil || !slices.Equal(policiesOf(s), []string{"pol-token"}) {
		t.Fatalf("the new key is not in the gateway when the rotation answers: %v", s)
	}
	waitFor(t, 5*time.Second, "the old key's expires at the gateway", func() bool {
		exp, _ := g.session(oldHash)["expires"].(float64)
		return int64(exp) == end.Unix()
	})
	for _, raw := range []string{a.RawKey, rot.RawKey} {
		if st, out := g.authenticate("api-token", http.Header{"Authorization": {raw}}); st != 200 && time.Now().Before(end) {
			t.Errorf("during the grace, %s at the gateway: %d %v", keylens.HashKey(raw), st, out)
		}
	}
	for time.Now().Before(end.Add(50 * time.Millisecond)) {
		time.Sleep(20 * time.Millisecond)
	}
	if st, _ := g.authenticate("api-token", http.Header{"Authorization": {a.RawKey}}); st == 200 {
		t.Error("the old key still works at the gateway after its grace")
	}
	if st, out := g.authenticate("api-token", http.Header{"Authorization": {rot.RawKey}}); st != 200 {
		t.Errorf("the new key at the gateway after the old one's end: %d %v", st, out)
	}
	waitFor(t, 5*time.Second, "the old key deleted from the gateway", func() bool { return g.session(oldHash) == nil })

	// Without grace the old key is deleted at once (through the feed).
	rot2 := rotate(t, in, dev, rot.KeyID, "0s")
	waitFor(t, 5*time.Second, "a key rotated without grace deleted from the gateway", func() bool { return g.session(rot.KeyID) == nil })
	if g.session(rot2.KeyID) == nil {
		t.Error("the replacement is not in the gateway")
	}

	// The gateway down: 502, nothing stored.
	g.kill()
	e := wantEnvelope(t, in.do("POST", "/api/keylens/developers/"+dev+"/keys/"+rot2.KeyID+"/rotate", `{"grace_period":"1h"}`), 502, "Error", "")
	if !strings.Contains(e.Message, "Tyk gateway") {
		t.Errorf("502 message %q", e.Message)
	}
	if keys := getDeveloper(t, in, dev).Keys; len(keys) != 1 || keys[rot2.KeyID] == nil {
		t.Errorf("keys after a rotation the gateway did not take: %v", keys)
	}
}
