package tests

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// Tyk provisioning, secure by default: deactivation stops keys and tokens
// without configuration, OAuth clients follow their developer, quota
// resets and skipped changes reach the gateway, sync leaves tokens alone,
// revokes follow a gateway's return at once, approvals hold no lock.

// setDeveloper reads developer dev, edits it, and writes it back.
func setDeveloper(t *testing.T, in *instance, dev string, edit func(d map[string]any)) {
	t.Helper()
	d := decodeAs[map[string]any](t, in.do("GET", "/api/portal/developers/"+dev, ""))
	edit(d)
	b, _ := json.Marshal(d)
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev, string(b)), 200, "OK", "Data updated")
}

// token asks the gateway's token endpoint of API api for a
// client-credentials token of client id: the status and the token.
func (g *gateway) token(api, id, secret string) (int, string) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", g.URL+"/"+api+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	r := send(g.t, req)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(r.Body, &out)
	return r.Status, out.AccessToken
}

// bearer authenticates token at API api of the gateway.
func (g *gateway) bearer(api, token string) int {
	g.t.Helper()
	st, _ := g.authenticate(api, http.Header{"Authorization": {"Bearer " + token}})
	return st
}

// slow makes the gateway take d to answer requests to paths starting
// with prefix.
func (g *gateway) slow(prefix string, d time.Duration) {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/double/delay?prefix="+url.QueryEscape(prefix)+"&d="+d.String(), nil)
	send(g.t, req)
}

func (g *gateway) inflight() int {
	g.t.Helper()
	req, _ := http.NewRequest("GET", g.URL+"/double/inflight", nil)
	return decodeAs[struct{ Inflight int }](g.t, send(g.t, req)).Inflight
}

// TestTykDeactivationByDefault: without --tyk-inactive-policy keylens
// creates its own inactive policy (written, then the gateway reloaded).
// OAuth clients follow their developer's edits. Deactivating the
// developer stops their key (the inactive policy) and their tokens
// (revoke_all with the client's secret and org, then the client deleted,
// so that it gets no new ones); reactivating restores the key's own
// policies and the client, without the old tokens.
func TestTykDeactivationByDefault(t *testing.T) {
	g := startGateway(t, "murmur64")
	store := "sqlite:" + filepath.Join(t.TempDir(), "keylens.db")
	env := []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_TYK_SECRET=" + gwSecret}
	in := startKeylens(t, store, env, "--org-id", gwOrg, "--tyk-gateway", g.URL)
	var policyCalls []string
	for _, l := range g.log() {
		if strings.HasPrefix(l.Path, "/tyk/policies") && l.Method != "GET" || strings.HasPrefix(l.Path, "/tyk/reload") {
			policyCalls = append(policyCalls, l.Method+" "+l.Path)
		}
	}
	if !slices.Equal(policyCalls, []string{"POST /tyk/policies", "GET /tyk/reload/group"}) {
		t.Errorf("policy calls %v: want the inactive policy written, then the gateway reloaded", policyCalls)
	}
	if st, p := g.call("GET", "/tyk/policies/keylens-inactive", nil); st != 200 || p["is_inactive"] != true || p["org_id"] != gwOrg {
		t.Fatalf("keylens's inactive policy: %d %v", st, p)
	}

	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com","fields":{"Company":"AE"}}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	hash := keylens.HashKey(a.RawKey)
	o := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"https://app.example.com/cb"}}`))
	key := http.Header{"Authorization": {a.RawKey}}
	st, tok := g.token("api-oauth", o.ClientID, o.Secret)
	if st != 200 || g.bearer("api-oauth", tok) != 200 {
		t.Fatalf("a gateway token of the developer's client: %d", st)
	}

	// Edits reach the gateway's copy of the OAuth client.
	client := func() map[string]any { c, _ := g.clients()["api-oauth/"+o.ClientID].(map[string]any); return c }
	setDeveloper(t, in, dev, func(d map[string]any) {
		d["email"] = "ada@lovelace.example"
		d["fields"] = map[string]any{"Company": "Difference Engines"}
	})
	waitFor(t, 5*time.Second, "the edit at the gateway's OAuth client", func() bool {
		m, _ := client()["meta_data"].(map[string]any)
		return m["tyk_developer_email"] == "ada@lovelace.example" && m["tyk_user_fields_Company"] == "Difference Engines"
	})
	if c := client(); c["secret"] != o.Secret || c["policy_id"] != "pol-oauth" || c["redirect_uri"] != "https://app.example.com/cb" {
		t.Errorf("the updated client %v", c)
	}

	setDeveloper(t, in, dev, func(d map[string]any) { d["inactive"] = true })
	waitFor(t, 5*time.Second, "the deactivation at the gateway", func() bool {
		return slices.Equal(policiesOf(g.session(hash)), []string{"keylens-inactive"}) && client() == nil
	})
	if st, out := g.authenticate("api-token", key); st != 403 || out["message"] != "Key is inactive, please renew" {
		t.Errorf("a deactivated developer's key: %d %v", st, out)
	}
	if st := g.bearer("api-oauth", tok); st != 403 {
		t.Errorf("a deactivated developer's token: %d", st)
	}
	if st, _ := g.token("api-oauth", o.ClientID, o.Secret); st == 200 {
		t.Error("a deactivated developer's client got a new token")
	}
	var order []string
	for _, l := range g.log() {
		switch {
		case l.Path == "/tyk/oauth/revoke_all":
			f, _ := url.ParseQuery(l.Form)
			if f.Get("client_id") != o.ClientID || f.Get("client_secret") != o.Secret || f.Get("org_id") != gwOrg {
				t.Errorf("revoke_all form %q", l.Form)
			}
			order = append(order, "revoke_all")
		case l.Method == "DELETE" && strings.HasPrefix(l.Path, "/tyk/oauth/clients/"):
			order = append(order, "delete client")
		}
	}
	if !slices.Equal(order, []string{"revoke_all", "delete client"}) {
		t.Errorf("at the gateway: %v, want the tokens revoked, then the client deleted", order)
	}

	setDeveloper(t, in, dev, func(d map[string]any) { d["inactive"] = false })
	waitFor(t, 5*time.Second, "the reactivation at the gateway", func() bool {
		return slices.Equal(policiesOf(g.session(hash)), []string{"pol-token"}) && client() != nil
	})
	if st, out := g.authenticate("api-token", key); st != 200 {
		t.Errorf("a reactivated developer's key: %d %v", st, out)
	}
	if st := g.bearer("api-oauth", tok); st != 403 {
		t.Errorf("an old token came back with the reactivation: %d", st)
	}
	if st, tok := g.token("api-oauth", o.ClientID, o.Secret); st != 200 || g.bearer("api-oauth", tok) != 200 {
		t.Errorf("a reactivated developer's client gets no working token: %d", st)
	}

	// Another start finds the policy there: it is not written again.
	in.stop()
	startKeylens(t, store, env, "--org-id", gwOrg, "--tyk-gateway", g.URL)
	writes := 0
	for _, l := range g.log() {
		if strings.HasPrefix(l.Path, "/tyk/policies") && l.Method != "GET" {
			writes++
		}
	}
	if writes != 1 {
		t.Errorf("%d policy writes after a restart, want 1", writes)
	}
}

// TestTykPolicyWritesRefused: a gateway whose policies come from a
// Dashboard refuses keylens's inactive policy: keylens does not start
// provisioning, and says to name one; named, it starts.
func TestTykPolicyWritesRefused(t *testing.T) {
	g := startGateway(t, "murmur64", func(cfg map[string]any) { cfg["policy_source"] = "service" })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard: keylens must exit at once
	defer cancel()
	cmd := exec.CommandContext(ctx, keylensBin, "serve", "--store", "sqlite:"+filepath.Join(t.TempDir(), "k.db"), "--admin-addr", "127.0.0.1:0",
		"--sidecar-addr", "127.0.0.1:0", "--portal-addr", "127.0.0.1:0", "--org-id", gwOrg, "--tyk-gateway", g.URL)
	cmd.Env = append(cleanEnv(), "KEYLENS_ADMIN_KEY="+testAdminKey, "KEYLENS_TYK_SECRET="+gwSecret)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "pass its id as --tyk-inactive-policy") {
		t.Errorf("exit %v, output:\n%s", err, out)
	}
	in := tykProvisioned(t, g, "") // --tyk-inactive-policy pol-inactive
	in.stop()
}

// TestTykQuotaReset: reset_quota writes the key to the gateway without
// suppress_reset, so that the gateway resets its counters.
func TestTykQuotaReset(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	hash := keylens.HashKey(decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`)).RawKey)
	s := g.session(hash)
	s["quota_remaining"] = 7
	if st, out := g.call("PUT", "/tyk/keys/"+hash+"?hashed=1&suppress_reset=1", s); st != 200 {
		t.Fatalf("PUT: %d %v", st, out)
	}
	wantEnvelope(t, in.do("POST", "/api/portal/developers/"+dev+"/keys/"+hash+"/reset_quota", ""), 200, "OK", "Quota reset")
	waitFor(t, 5*time.Second, "the quota reset at the gateway", func() bool { return fmt.Sprint(g.session(hash)["quota_remaining"]) == "1000" })
	if s := g.session(hash); !slices.Equal(policiesOf(s), []string{"pol-token"}) || s["alias"] != "ada@example.com" {
		t.Errorf("the reset rewrote more than the counters: %v", s)
	}
}

// TestTykUnreadableChangeSkipped: a change the store cannot read (a JWT
// key whose sealed secret no longer opens) is tried a few times, then
// skipped: counted, logged once with what to do, and a later revoke goes
// through. keylens tyk sync reports it; once the cause is mended, --fix
// applies it.
func TestTykUnreadableChangeSkipped(t *testing.T) {
	g := startGateway(t, "murmur64")
	path := filepath.Join(t.TempDir(), "keylens.db")
	secretsKey := strings.Repeat("ab", 32)
	in := startKeylens(t, "sqlite:"+path, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_TYK_SECRET=" + gwSecret, "KEYLENS_SECRETS_KEY=" + secretsKey},
		"--org-id", gwOrg, "--tyk-gateway", g.URL, "--tyk-inactive-policy", "pol-inactive")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	ada := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	jwtHash := keylens.HashKey(decodeApproval(t, in.do("POST", "/api/portal/developers/"+ada+"/keys",
		`{"apply_policies":["pol-jwt"],"jwt_secret":"a-long-enough-hmac-secret-0123456789"}`)).RawKey)
	bob := createDeveloper(t, in, `{"email":"bob@example.com"}`)
	hash := keylens.HashKey(decodeApproval(t, in.do("POST", "/api/portal/developers/"+bob+"/keys", `{"apply_policies":["pol-token"]}`)).RawKey)

	// The key's sealed secret is altered behind keylens's back.
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sealed string
	if err := db.QueryRow(`SELECT jwt_secret FROM developer_keys WHERE key_hash = ?`, jwtHash).Scan(&sealed); err != nil || !strings.HasPrefix(sealed, keylens.SealedPrefix) {
		t.Fatalf("sealed secret %q: %v", sealed, err)
	}
	altered := sealed[:len(sealed)-4] + "AAAA"
	if altered == sealed {
		altered = sealed[:len(sealed)-4] + "BBBB"
	}
	if _, err := db.Exec(`UPDATE developer_keys SET jwt_secret = ? WHERE key_hash = ?`, altered, jwtHash); err != nil {
		t.Fatal(err)
	}
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+ada+"/keys/"+jwtHash, `{"apply_policies":["pol-gold"]}`), 200, "OK", "Data updated")
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+bob+"/keys/"+hash, ""), 200, "OK", "Data deleted")
	waitFor(t, 30*time.Second, "the revoke applied after the unreadable change", func() bool { return g.session(hash) == nil })
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	if !strings.Contains(metrics, `keylens_tyk_gateway_changes_skipped_total{reason="store"} 1`) {
		t.Errorf("the skipped change is not counted:\n%s", metrics)
	}
	if n := strings.Count(in.stderr.String(), "run keylens tyk sync --fix"); n != 1 {
		t.Errorf("the skipped change logged %d times with what to do, want once:\n%s", n, in.stderr)
	}

	sync := func(args ...string) (int, string) {
		cmd := exec.Command(keylensBin, append([]string{"tyk", "sync", "--store", "sqlite:" + path, "--tyk-gateway", g.URL,
			"--tyk-inactive-policy", "pol-inactive"}, args...)...)
		cmd.Env = append(cleanEnv(), "KEYLENS_TYK_SECRET="+gwSecret, "KEYLENS_SECRETS_KEY="+secretsKey)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	code, out := sync("--fix")
	if code != 1 || !strings.Contains(out, "skipped change") || !strings.Contains(out, "does not open") ||
		!strings.Contains(out, "unreadable "+jwtHash) || strings.Contains(out, "[fixed]") {
		t.Errorf("sync --fix before the cause is mended: exit %d\n%s", code, out)
	}
	if _, err := db.Exec(`UPDATE developer_keys SET jwt_secret = ? WHERE key_hash = ?`, sealed, jwtHash); err != nil {
		t.Fatal(err)
	}
	code, out = sync("--fix")
	if code != 0 || !strings.Contains(out, "skipped change") || !strings.Contains(out, "[fixed]") {
		t.Errorf("sync --fix once mended: exit %d\n%s", code, out)
	}
	if p := policiesOf(g.session(jwtHash)); !slices.Equal(p, []string{"pol-gold"}) {
		t.Errorf("the key has %v at the gateway after the fix, want the skipped change's pol-gold", p)
	}
	if code, out = sync(); code != 0 || strings.Contains(out, "skipped change") {
		t.Errorf("sync after the fix: exit %d\n%s", code, out)
	}
}

// TestTykRevokeWhenTheGatewayReturns: a key revoked while the gateway is
// down reaches it as soon as it answers again: keylens probes it (/hello)
// while it is down, and the DELETE follows the first answered probe.
func TestTykRevokeWhenTheGatewayReturns(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	hash := keylens.HashKey(decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`)).RawKey)
	for _, outage := range []time.Duration{2 * time.Second, 5 * time.Second} {
		g.kill()
		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 200, "OK", "Data deleted")
		time.Sleep(outage) // the outage
		back := time.Now()
		g.restart() // a fresh request log
		waitFor(t, 30*time.Second, "the revoke at the gateway", func() bool { return g.session(hash) == nil })
		var fromKeylens []gwLogged
		for _, l := range g.log() {
			if !(l.Method == "GET" && strings.HasPrefix(l.Path, "/tyk/keys/")) { // the test's own reads
				fromKeylens = append(fromKeylens, l)
			}
		}
		if len(fromKeylens) < 2 || fromKeylens[0].Path != "/hello" || fromKeylens[0].Status != 200 ||
			fromKeylens[1].Method != "DELETE" || fromKeylens[1].Path != "/tyk/keys/"+hash {
			t.Fatalf("after a %v outage, the gateway saw %+v: want an answered probe, then the DELETE", outage, fromKeylens)
		}
		t.Logf("outage %v: the DELETE came %v after the gateway was started again", outage, fromKeylens[1].At.Sub(back))
		if outage == 2*time.Second { // the next round revokes a new key
			hash = keylens.HashKey(decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`)).RawKey)
		}
	}
}

// TestTykApprovalHoldsNoLock: an approval waiting 3 s for the gateway does
// not hold up a developer's creation, which completes while the gateway
// still holds the approval; two approvals of one request race, and exactly
// one key remains, in keylens and in the gateway.
func TestTykApprovalHoldsNoLock(t *testing.T) {
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, "")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)

	approve := func(method, path, body string) <-chan int {
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest(method, in.AdminURL+path, strings.NewReader(body))
			req.Header.Set("Authorization", testAdminKey)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			done <- res.StatusCode
		}()
		return done
	}
	g.slow("/tyk/keys/", 3*time.Second)
	slow := approve("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`)
	waitFor(t, 10*time.Second, "the approval at the gateway", func() bool { return g.inflight() == 1 })
	other := createDeveloper(t, in, `{"email":"grace@example.com"}`)
	select {
	case st := <-slow:
		t.Fatalf("the approval (%d) finished before the developer's creation", st)
	default:
	}
	if n := g.inflight(); n != 1 {
		t.Fatalf("the gateway holds %d requests after the developer's creation, want the approval", n)
	}
	select {
	case st := <-slow:
		if st != 200 {
			t.Fatalf("the slow approval: %d", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the slow approval never finished")
	}

	// Two approvals of one request, both at the gateway before either
	// commits.
	g.slow("/tyk/keys/", time.Second)
	id := fileRequest(t, in, `{"by_user":"`+other+`","apply_policies":["pol-token"]}`)
	one := approve("PUT", "/api/portal/requests/approve/"+id, "")
	two := approve("PUT", "/api/portal/requests/approve/"+id, "")
	statuses := []int{<-one, <-two}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []int{200, 409}) {
		t.Fatalf("two approvals of one request answered %v, want 200 and 409", statuses)
	}
	keys := getDeveloper(t, in, other).Keys
	if len(keys) != 1 {
		t.Fatalf("the developer has %d keys, want 1", len(keys))
	}
	inGateway := 0
	_, list := g.call("GET", "/tyk/keys", nil)
	for _, h := range list["keys"].([]any) {
		if m, _ := g.session(h.(string))["meta_data"].(map[string]any); m["tyk_developer_id"] == other {
			inGateway++
			if _, ok := keys[h.(string)]; !ok {
				t.Errorf("the gateway holds %s, not the key keylens kept", h)
			}
		}
	}
	if inGateway != 1 {
		t.Errorf("the gateway holds %d keys of the developer, want 1 (the loser's undone)", inGateway)
	}
}

// TestTykApprovalCommitLost: on PostgreSQL, the connection is lost after
// an approval's COMMIT was sent. When it committed, the approval answers
// 200 and its key stays in the gateway; when it did not, the key created
// in the gateway is deleted again.
func TestTykApprovalCommitLost(t *testing.T) {
	proxy := pgtest.NewProxy(t, pgtest.Shared(t).NewDatabase(t))
	g := startGateway(t, "murmur64")
	in := tykProvisioned(t, g, proxy.URL)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)

	lost := proxy.LoseCommit("INSERT INTO developer_keys", true)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	select {
	case <-lost:
	default:
		t.Fatal("the connection was not lost at the approval's commit")
	}
	hash := keylens.HashKey(a.RawKey)
	if g.session(hash) == nil {
		t.Error("a committed approval's key was undone in the gateway")
	}
	if _, ok := getDeveloper(t, in, dev).Keys[hash]; !ok {
		t.Error("the committed approval's key is not in keylens")
	}

	lost = proxy.LoseCommit("INSERT INTO developer_keys", false)
	if r := in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`); r.Status == 200 {
		t.Fatalf("an approval whose commit was lost before the server: %d %s", r.Status, r.Body)
	}
	<-lost
	if n := len(getDeveloper(t, in, dev).Keys); n != 1 {
		t.Errorf("%d keys in keylens, want 1", n)
	}
	_, list := g.call("GET", "/tyk/keys", nil)
	var inGateway []string
	for _, h := range list["keys"].([]any) {
		inGateway = append(inGateway, h.(string))
	}
	if !slices.Equal(inGateway, []string{hash}) {
		t.Errorf("the gateway holds %v, want only %s (the uncommitted approval's key deleted)", inGateway, hash)
	}
}
