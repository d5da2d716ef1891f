package gatewayapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/TykTechnologies/tyk/gatewayapi"
	"github.com/TykTechnologies/tyk/storage"
)

const org = "5e9d9544a1dcd60001d0ed20"

func newGateway(t *testing.T, state string) *httptest.Server {
	t.Helper()
	g, err := gatewayapi.New(gatewayapi.Config{Secret: "s", HashKeys: true, HashKeyFunction: "murmur64", Policies: []gatewayapi.Policy{
		{ID: "p", OrgID: org, QuotaMax: 10, AccessRights: map[string]any{"api": map[string]any{}}},
		{ID: "off", OrgID: org, IsInactive: true, AccessRights: map[string]any{"api": map[string]any{}}},
	}, APIs: []gatewayapi.API{{APIID: "api", OrgID: org}}}, state)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-Tyk-Authorization", "s")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The facts of docs/tyk-facts.md ("The Gateway API"), one by one: the key
// formed from (org, id) is its third test vector with its hash; ?hashed=
// counts for any non-empty value; a PUT replaces and needs the org; a key
// with policies loses its own is_inactive; the 404 of DELETE; the secret;
// form-only revocation.
func TestGatewayFacts(t *testing.T) {
	srv := newGateway(t, filepath.Join(t.TempDir(), "state.json"))
	if st, _ := call(t, srv, "GET", "/tyk/keys", "", "X-Tyk-Authorization", "wrong"); st != 403 {
		t.Errorf("wrong secret: %d", st)
	}
	st, a := call(t, srv, "POST", "/tyk/keys/d47239e128754c0c9148363286b8ed46",
		`{"org_id":"`+org+`","apply_policies":["p"],"alias":"a@example.com","is_inactive":true}`)
	want := "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0="
	if st != 200 || a["key"] != want || a["key_hash"] != "cac572e018c60de0" || a["key_hash"] != storage.HashStr(want) {
		t.Fatalf("create: %d %v", st, a)
	}
	for _, v := range []string{"1", "true", "false"} {
		if st, s := call(t, srv, "GET", "/tyk/keys/cac572e018c60de0?hashed="+v, ""); st != 200 || s["is_inactive"] != nil || s["alias"] != "a@example.com" {
			t.Errorf("hashed=%s: %d %v (is_inactive must be dropped on a key with policies)", v, st, s)
		}
	}
	if st, _ := call(t, srv, "GET", "/tyk/keys/cac572e018c60de0?hashed=", ""); st != 404 {
		t.Errorf("an empty hashed= counted: %d", st)
	}
	if st, _ := call(t, srv, "GET", "/tyk/keys/d47239e128754c0c9148363286b8ed46?org_id="+org, ""); st != 200 {
		t.Errorf("by id and org: %d", st)
	}
	if st, _ := call(t, srv, "PUT", "/tyk/keys/cac572e018c60de0?hashed=1", `{"apply_policies":["p"]}`); st != 500 {
		t.Errorf("PUT without org_id: %d, want 500 (policy looked up in an empty org)", st)
	}
	if st, _ := call(t, srv, "PUT", "/tyk/keys/cac572e018c60de0?hashed=1", `{"org_id":"`+org+`","apply_policies":["p"]}`); st != 200 {
		t.Errorf("PUT: %d", st)
	}
	if _, s := call(t, srv, "GET", "/tyk/keys/cac572e018c60de0?hashed=1", ""); s["alias"] != nil {
		t.Errorf("PUT merged instead of replacing: %v", s)
	}
	if st, _ := call(t, srv, "PUT", "/tyk/keys/0000000000000000?hashed=1", `{"org_id":"`+org+`"}`); st != 404 {
		t.Errorf("PUT of an absent key: %d", st)
	}
	if st, _ := call(t, srv, "POST", "/tyk/oauth/revoke", `{"token":"x"}`, "Content-Type", "application/json"); st != 400 {
		t.Errorf("JSON revoke: %d", st)
	}
	if st, _ := call(t, srv, "POST", "/tyk/oauth/revoke", "token=x&client_id=c", "Content-Type", "application/x-www-form-urlencoded"); st != 200 {
		t.Errorf("form revoke: %d", st)
	}
	if st, out := call(t, srv, "DELETE", "/tyk/keys/cac572e018c60de0?hashed=1", ""); st != 200 || out["action"] != "deleted" {
		t.Errorf("DELETE: %d %v", st, out)
	}
	if st, out := call(t, srv, "DELETE", "/tyk/keys/cac572e018c60de0?hashed=1", ""); st != 404 || out["message"] != "There is no such key found" {
		t.Errorf("DELETE again: %d %v", st, out)
	}
	if st, _ := call(t, srv, "GET", "/tyk/keys", ""); st != 404 {
		t.Errorf("hashed key listing is off by default: %d", st)
	}
}

// Quota counters reset on a write unless suppress_reset=1; the policy
// endpoint keeps them; a restart on the same state file keeps the keys.
func TestGatewayQuotaAndRestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	srv := newGateway(t, state)
	_, a := call(t, srv, "POST", "/tyk/keys/abcdef", `{"org_id":"`+org+`","apply_policies":["p"]}`)
	hash := a["key_hash"].(string)
	call(t, srv, "PUT", "/tyk/keys/"+hash+"?hashed=1&suppress_reset=1", `{"org_id":"`+org+`","apply_policies":["p"],"quota_remaining":3}`)
	call(t, srv, "POST", "/tyk/keys/policy/"+hash, `{"apply_policies":["off"]}`)
	if _, s := call(t, srv, "GET", "/tyk/keys/"+hash+"?hashed=1", ""); s["quota_remaining"] != 3.0 || s["apply_policies"].([]any)[0] != "off" {
		t.Errorf("after the policy swap: %v", s)
	}
	srv.Close()
	srv = newGateway(t, state)
	call(t, srv, "PUT", "/tyk/keys/"+hash+"?hashed=1", `{"org_id":"`+org+`","apply_policies":["p"],"quota_remaining":3}`)
	if _, s := call(t, srv, "GET", "/tyk/keys/"+hash+"?hashed=1", ""); s["quota_remaining"] != 10.0 {
		t.Errorf("after a restart and a PUT without suppress_reset: %v", s)
	}
}

// The policies API: a written policy takes effect at the reload, not
// before; a gateway whose policies come from a Dashboard refuses writes;
// a key applying an inactive policy is refused, whatever its own flag.
func TestGatewayPolicies(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	srv := newGateway(t, state)
	if st, out := call(t, srv, "POST", "/tyk/policies", `{"id":"new","org_id":"`+org+`","is_inactive":true,"access_rights":{}}`); st != 200 || out["key"] != "new" {
		t.Fatalf("POST policy: %d %v", st, out)
	}
	if st, _ := call(t, srv, "POST", "/tyk/keys/abcdef", `{"org_id":"`+org+`","apply_policies":["new"]}`); st != 500 {
		t.Errorf("a policy not yet reloaded applied: %d", st)
	}
	if st, _ := call(t, srv, "GET", "/tyk/reload/group", ""); st != 200 {
		t.Fatalf("reload: %d", st)
	}
	_, a := call(t, srv, "POST", "/tyk/keys/abcdef", `{"org_id":"`+org+`","apply_policies":["new"]}`)
	req, _ := http.NewRequest("GET", srv.URL+"/double/authenticate?api_id=api", nil)
	req.Header.Set("Authorization", a["key"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("a key of an inactive policy: %d", resp.StatusCode)
	}
	srv.Close()
	srv = newGateway(t, state) // written policies survive a restart
	if st, p := call(t, srv, "GET", "/tyk/policies/new", ""); st != 200 || p["is_inactive"] != true {
		t.Errorf("after a restart: %d %v", st, p)
	}
	g, _ := gatewayapi.New(gatewayapi.Config{Secret: "s", PolicySource: "service"}, "")
	dash := httptest.NewServer(g)
	defer dash.Close()
	if st, out := call(t, dash, "POST", "/tyk/policies", `{"id":"x"}`); st != 500 || !strings.Contains(out["message"].(string), "Dashboard API") {
		t.Errorf("policy write with a service policy source: %d %v", st, out)
	}
	if st, _ := call(t, dash, "GET", "/hello", "", "X-Tyk-Authorization", ""); st != 200 {
		t.Errorf("/hello without the secret: %d", st)
	}
}

// OAuth: a client updated keeps its id and secret; its tokens are
// sessions listed as keys, carrying its metadata; revoke_all needs its
// secret (and answers 200 without); a deleted client's tokens are refused.
func TestGatewayOAuth(t *testing.T) {
	g, err := gatewayapi.New(gatewayapi.Config{Secret: "s", HashKeys: true, HashKeyFunction: "murmur64", EnableHashedKeysListing: true,
		Policies: []gatewayapi.Policy{{ID: "po", OrgID: org, AccessRights: map[string]any{"oa": map[string]any{}}}},
		APIs:     []gatewayapi.API{{APIID: "oa", OrgID: org, UseOAuth2: true}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	call(t, srv, "POST", "/tyk/oauth/clients/create", `{"client_id":"c1","secret":"sec","redirect_uri":"https://a/cb","policy_id":"po","meta_data":{"tyk_developer_id":"d1"}}`)
	if st, c := call(t, srv, "PUT", "/tyk/oauth/clients/oa/c1", `{"redirect_uri":"https://a/cb","policy_id":"po","meta_data":{"tyk_developer_id":"d1","tyk_developer_email":"new@example.com"},"secret":"other"}`); st != 200 ||
		c["secret"] != "sec" || c["meta_data"].(map[string]any)["tyk_developer_email"] != "new@example.com" {
		t.Errorf("update: %d %v", st, c)
	}
	token := func() string {
		req, _ := http.NewRequest("POST", srv.URL+"/oa/oauth/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("c1", "sec")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		tok, _ := out["access_token"].(string)
		if resp.StatusCode != 200 || tok == "" {
			t.Fatalf("token: %d %v", resp.StatusCode, out)
		}
		return tok
	}
	auth := func(tok string) int {
		req, _ := http.NewRequest("GET", srv.URL+"/double/authenticate?api_id=oa", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tok := token()
	_, list := call(t, srv, "GET", "/tyk/keys", "")
	keys := list["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("listed %v", keys)
	}
	if _, s := call(t, srv, "GET", "/tyk/keys/"+keys[0].(string)+"?hashed=1", ""); s["oauth_client_id"] != "c1" || s["meta_data"].(map[string]any)["tyk_developer_id"] != "d1" {
		t.Errorf("token session %v", s)
	}
	if auth(tok) != 200 {
		t.Error("a live token refused")
	}
	form := "Content-Type"
	call(t, srv, "POST", "/tyk/oauth/revoke_all", "client_id=c1&client_secret=wrong&org_id="+org, form, "application/x-www-form-urlencoded")
	if auth(tok) != 200 {
		t.Error("revoke_all with a wrong secret revoked")
	}
	if st, _ := call(t, srv, "POST", "/tyk/oauth/revoke_all", "client_id=c1&client_secret=sec&org_id="+org, form, "application/x-www-form-urlencoded"); st != 200 || auth(tok) != 403 {
		t.Errorf("revoke_all: %d, token %d", st, auth(tok))
	}
	tok = token() // the client still gets new ones
	call(t, srv, "DELETE", "/tyk/oauth/clients/oa/c1", "")
	if auth(tok) != 403 {
		t.Error("a deleted client's token works")
	}
}
