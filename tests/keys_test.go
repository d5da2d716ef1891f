package tests

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// testCatalogue publishes one policy per auth type.
const testCatalogue = `{"apis":[
  {"name":"Token API","short_description":"Keys","long_description":"","show":true,"api_id":"api-token","policy_id":"pol-token",
   "documentation":"","version":"v2","is_keyless":false,"config":{},"fields":{},"auth_type":"authToken"},
  {"name":"Gold","policy_id":"pol-gold","api_id":"api-token","auth_type":"authToken"},
  {"name":"Basic API","policy_id":"pol-basic","api_id":"api-basic","auth_type":"basic"},
  {"name":"OAuth API","policy_id":"pol-oauth","api_id":"api-oauth","auth_type":"oauth"},
  {"name":"JWT API","policy_id":"pol-jwt","api_id":"api-jwt","auth_type":"jwt"}
]}`

// portalWithCatalogue starts keylens with testCatalogue and one developer.
func portalWithCatalogue(t *testing.T) (*instance, string) {
	t.Helper()
	in := startDefault(t)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com","fields":{"Company":"Analytical Engines"}}`)
	return in, dev
}

type approval struct {
	RawKey, Password                        string
	ClientID, Secret, PolicyID, RedirectURI string
}

func decodeApproval(t testing.TB, r response) approval {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("approval: %d %s", r.Status, r.Body)
	}
	var raw map[string]string
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatalf("approval body %s: %v", r.Body, err)
	}
	return approval{RawKey: raw["RawKey"], Password: raw["Password"], ClientID: raw["client_id"], Secret: raw["secret"],
		PolicyID: raw["policy_id"], RedirectURI: raw["redirect_uri"]}
}

// fileRequest posts a key request and returns its id.
func fileRequest(t *testing.T, in *instance, body string) string {
	t.Helper()
	e := wantEnvelope(t, in.do("POST", "/api/portal/requests", body), 200, "OK", "")
	if !objectID.MatchString(e.Message) {
		t.Fatalf("request id %q", e.Message)
	}
	return e.Message
}

func TestCatalogueAndConfiguration(t *testing.T) {
	in := startDefault(t)
	// Before anything is stored: an empty catalogue, default configuration.
	empty := decodeAs[map[string]any](t, in.do("GET", "/api/portal/catalogue", ""))
	if apis, ok := empty["apis"].([]any); !ok || len(apis) != 0 {
		t.Errorf("empty catalogue %v", empty)
	}
	cfg := in.do("GET", "/api/portal/configuration", "")
	if cfg.Status != 200 || !strings.Contains(string(cfg.Body), `"require_key_approval":false`) {
		t.Errorf("default configuration %d %s", cfg.Status, cfg.Body)
	}

	id := wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "").Message
	got := in.do("GET", "/api/portal/catalogue", "")
	var cat struct {
		ID   string `json:"id"`
		APIs []map[string]any
	}
	if err := json.Unmarshal(got.Body, &cat); err != nil || cat.ID != id || len(cat.APIs) != 5 {
		t.Fatalf("catalogue %s (%v)", got.Body, err)
	}
	for _, member := range []string{"name", "short_description", "long_description", "show", "api_id", "policy_id",
		"documentation", "version", "is_keyless", "config", "fields", "auth_type"} {
		if _, ok := cat.APIs[1][member]; !ok {
			t.Errorf("catalogue entry lacks %q: %v", member, cat.APIs[1])
		}
	}
	wantEnvelope(t, in.do("PUT", "/api/portal/catalogue", `{"apis":[{"policy_id":"only","auth_type":"authToken"}]}`), 200, "OK", id)

	wantEnvelope(t, in.do("PUT", "/api/portal/configuration", `{"require_key_approval":true,"signup_fields":["Company"],
		"key_request_fields":["Use case"],"redirect_on_key_request":true}`), 200, "OK", "")
	cfg = in.do("GET", "/api/portal/configuration", "")
	for _, want := range []string{`"require_key_approval":true`, `"signup_fields":["Company"]`, `"key_request_fields":["Use case"]`, `"redirect_on_key_request":true`} {
		if !strings.Contains(string(cfg.Body), want) {
			t.Errorf("configuration %s lacks %s", cfg.Body, want)
		}
	}

	for name, tc := range map[string]struct{ method, path, body string }{
		"catalogue malformed":         {"PUT", "/api/portal/catalogue", `{"apis":[}`},
		"catalogue bad auth type":     {"PUT", "/api/portal/catalogue", `{"apis":[{"policy_id":"x","auth_type":"magic"}]}`},
		"catalogue without policy":    {"POST", "/api/portal/catalogue", `{"apis":[{"name":"x"}]}`},
		"configuration wrong type":    {"PUT", "/api/portal/configuration", `{"require_key_approval":"yes"}`},
		"configuration not an object": {"PUT", "/api/portal/configuration", `[]`},
	} {
		t.Run(name, func(t *testing.T) {
			wantEnvelope(t, in.do(tc.method, tc.path, tc.body), 400, "Error", "")
		})
	}
	// The refusals changed nothing.
	if c := decodeAs[map[string]any](t, in.do("GET", "/api/portal/catalogue", "")); len(c["apis"].([]any)) != 1 {
		t.Errorf("catalogue changed by refused input: %v", c)
	}
}

// TestCommunityThreadFlow is the community thread's flow, for each auth type:
// create a developer, file a key request, approve it, see the key on the
// developer, change its policy, revoke it.
func TestCommunityThreadFlow(t *testing.T) {
	in, dev := portalWithCatalogue(t)

	t.Run("authToken", func(t *testing.T) {
		req := fileRequest(t, in, fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-token","fields":{"custom1":"sdf","Use case":"billing"},"version":"v2"}`, dev))
		got := decodeAs[map[string]any](t, in.do("GET", "/api/portal/requests/"+req, ""))
		if got["approved"] != false || got["portal_developer"] == nil || got["catalogue_entry"] == nil || got["catalogues"] == nil {
			t.Errorf("pending request %v", got)
		}
		a := decodeApproval(t, in.do("PUT", "/api/portal/requests/approve/"+req, ""))
		if keylens.KeyOrg(a.RawKey) == "" || keylens.KeyHashAlgorithm(a.RawKey) != "murmur64" || a.Password != "" {
			t.Fatalf("RawKey %q is not a murmur64 Tyk key", a.RawKey)
		}
		hash := keylens.HashKey(a.RawKey)
		d := getDeveloper(t, in, dev)
		if strings.Join(d.Keys[hash], ",") != "pol-token" || d.Subscriptions["pol-token"] != hash {
			t.Errorf("developer keys %v subscriptions %v", d.Keys, d.Subscriptions)
		}
		got = decodeAs[map[string]any](t, in.do("GET", "/api/portal/requests/"+req, ""))
		if got["approved"] != true || got["key"] != hash {
			t.Errorf("approved request %v", got)
		}
		// Approving again creates nothing.
		wantEnvelope(t, in.do("PUT", "/api/portal/requests/approve/"+req, ""), 409, "Error", "")
		if d := getDeveloper(t, in, dev); len(d.Keys) != 1 {
			t.Errorf("%d keys after a second approval", len(d.Keys))
		}

		// Change the policy (by hash), then by the raw key, then revoke.
		wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev+"/keys/"+hash, `{"apply_policies":["pol-gold"]}`), 200, "OK", "Data updated")
		if d := getDeveloper(t, in, dev); strings.Join(d.Keys[hash], ",") != "pol-gold" || d.Subscriptions["pol-gold"] != hash {
			t.Errorf("after policy change: %v %v", d.Keys, d.Subscriptions)
		}
		wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev+"/keys/"+a.RawKey, `{"apply_policies":["pol-token","pol-gold"]}`), 200, "OK", "Data updated")
		if d := getDeveloper(t, in, dev); strings.Join(d.Keys[hash], ",") != "pol-token,pol-gold" {
			t.Errorf("after policy change by raw key: %v", d.Keys)
		}
		wantEnvelope(t, in.do("POST", "/api/portal/developers/"+dev+"/keys/"+hash+"/reset_quota", ""), 200, "OK", "Quota reset")
		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 200, "OK", "Data deleted")
		if d := getDeveloper(t, in, dev); len(d.Keys) != 0 || len(d.Subscriptions) != 0 {
			t.Errorf("after revoke: %v %v", d.Keys, d.Subscriptions)
		}
		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 404, "Error", "Key not found")
	})

	t.Run("basic", func(t *testing.T) {
		req := fileRequest(t, in, fmt.Sprintf(`{"by_user":%q,"apply_policies":["pol-basic"]}`, dev))
		a := decodeApproval(t, in.do("PUT", "/api/portal/requests/approve/"+req, ""))
		if len(a.RawKey) != 10 || len(a.Password) < 12 {
			t.Fatalf("basic approval %+v", a)
		}
		d := getDeveloper(t, in, dev)
		hash := keylens.HashKey(keylens.KeyFor(d.OrgID, a.RawKey, "murmur64"))
		if d.Keys[hash] == nil {
			t.Errorf("basic key not filed under the gateway's hash of (org, username): %v", d.Keys)
		}
		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 200, "OK", "Data deleted")
	})

	t.Run("oauth", func(t *testing.T) {
		req := fileRequest(t, in, fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-oauth","fields":{"oauth_app_description":"My App","oauth_use_case":"Sync"},
			"oauth_info":{"redirect_uri":"http://localhost/cb"}}`, dev))
		a := decodeApproval(t, in.do("PUT", "/api/portal/requests/approve/"+req, ""))
		if len(a.ClientID) != 32 || a.Secret == "" || a.PolicyID != "pol-oauth" || a.RedirectURI != "http://localhost/cb" {
			t.Fatalf("oauth approval %+v", a)
		}
		d := getDeveloper(t, in, dev)
		cs := d.OAuthClients["pol-oauth"]
		if len(cs) != 1 || cs[0]["client_id"] != a.ClientID || cs[0]["app_description"] != "My App" || cs[0]["use_case"] != "Sync" {
			t.Errorf("oauth clients %v", d.OAuthClients)
		}
		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/oauth/"+a.ClientID, ""), 200, "OK", "Data deleted")
		if d := getDeveloper(t, in, dev); len(d.OAuthClients) != 0 {
			t.Errorf("client not deleted: %v", d.OAuthClients)
		}
		wantEnvelope(t, in.do("DELETE", "/api/portal/developers/oauth/"+a.ClientID, ""), 404, "Error", "")
	})

	t.Run("jwt", func(t *testing.T) {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(pub)
		pemKey, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
		for name, secret := range map[string]string{"hmac": `"a-long-enough-hmac-secret-0123456789"`, "public key": string(pemKey)} {
			t.Run(name, func(t *testing.T) {
				req := fileRequest(t, in, fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-jwt","jwt_secret":%s}`, dev, secret))
				a := decodeApproval(t, in.do("PUT", "/api/portal/requests/approve/"+req, ""))
				hash := keylens.HashKey(a.RawKey)
				if d := getDeveloper(t, in, dev); d.Keys[hash] == nil {
					t.Errorf("jwt key id not on the developer: %v", d.Keys)
				}
				wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 200, "OK", "Data deleted")
			})
		}
		// No secret: the approval is refused and nothing changes.
		req := fileRequest(t, in, fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-jwt"}`, dev))
		wantEnvelope(t, in.do("PUT", "/api/portal/requests/approve/"+req, ""), 400, "Error", "")
		if got := decodeAs[map[string]any](t, in.do("GET", "/api/portal/requests/"+req, "")); got["approved"] != false {
			t.Errorf("refused approval left the request approved: %v", got)
		}
		if d := getDeveloper(t, in, dev); len(d.Keys) != 0 {
			t.Errorf("refused approval left keys %v", d.Keys)
		}
	})
}

func TestKeyRequestRoutes(t *testing.T) {
	in, dev := portalWithCatalogue(t)
	// The sample body of the Tyk docs' "Create a Key Request" (trimmed of
	// its embedded developer), with by_user pointing at our developer.
	a := fileRequest(t, in, fmt.Sprintf(`{"key":"","org_id":"","for_api":"","for_plan":"pol-token","apply_policies":["pol-token"],
		"remove_policies":[],"by_user":%q,"fields":{},"approved":true,"date_created":"2020-07-02T12:47:35.953Z","version":"v2",
		"jwt_secret":"","certificate":""}`, dev))
	if got := decodeAs[map[string]any](t, in.do("GET", "/api/portal/requests/"+a, "")); got["approved"] != false || got["date_created"] != "2020-07-02T12:47:35.953Z" {
		t.Errorf("a client cannot file an approved request: %v", got)
	}
	b := fileRequest(t, in, fmt.Sprintf(`{"by_user":%q,"apply_policies":["pol-gold"]}`, dev))
	decodeApproval(t, in.do("PUT", "/api/portal/requests/approve/"+b, ""))
	for i := 0; i < 11; i++ {
		fileRequest(t, in, fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-token"}`, dev))
	}
	type reqList struct {
		Data  []map[string]any
		Pages int
	}
	for query, want := range map[string][2]int{"": {13, 2}, "?p=1": {10, 2}, "?p=2": {3, 2}, "?approved=true": {1, 1}, "?approved=false": {12, 2}, "?approved=false&p=2": {2, 2}} {
		l := decodeAs[reqList](t, in.do("GET", "/api/portal/requests"+query, ""))
		if len(l.Data) != want[0] || l.Pages != want[1] {
			t.Errorf("%q: %d items, %d pages; want %v", query, len(l.Data), l.Pages, want)
		}
	}
	if l := decodeAs[reqList](t, in.do("GET", "/api/portal/requests?p=1", "")); l.Data[0]["portal_developer"] == nil {
		t.Error("list items lack portal_developer")
	}

	// PUT and the docs' UPDATE method both update, answering the id.
	wantEnvelope(t, in.do("PUT", "/api/portal/requests/"+a, fmt.Sprintf(`{"by_user":%q,"apply_policies":["pol-gold"],"fields":{"Use case":"x"}}`, dev)), 200, "OK", a)
	wantEnvelope(t, in.do("UPDATE", "/api/portal/requests/"+a, fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-token","fields":{"Use case":"y"}}`, dev)), 200, "OK", a)
	got := decodeAs[map[string]any](t, in.do("GET", "/api/portal/requests/"+a, ""))
	if got["for_plan"] != "pol-token" || got["fields"].(map[string]any)["Use case"] != "y" {
		t.Errorf("after UPDATE: %v", got)
	}
	wantEnvelope(t, in.do("DELETE", "/api/portal/requests/"+a, ""), 200, "OK", "Data deleted")
	wantEnvelope(t, in.do("GET", "/api/portal/requests/"+a, ""), 404, "Error", "Key request not found")

	t.Run("bad input changes nothing", func(t *testing.T) {
		count := func() int { return len(decodeAs[reqList](t, in.do("GET", "/api/portal/requests", "")).Data) }
		before := count()
		for name, tc := range map[string]struct {
			method, path, body string
			status             int
		}{
			"malformed (the thread's trailing comma)": {"POST", "/api/portal/requests", fmt.Sprintf(`{"by_user":%q,"fields":{"custom1":"sdf",},"for_plan":"pol-token"}`, dev), 400},
			"unknown developer":                       {"POST", "/api/portal/requests", `{"by_user":"000000000000000000000000","for_plan":"pol-token"}`, 400},
			"unknown policy":                          {"POST", "/api/portal/requests", fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-nope"}`, dev), 400},
			"no policy":                               {"POST", "/api/portal/requests", fmt.Sprintf(`{"by_user":%q}`, dev), 400},
			"wrong type":                              {"POST", "/api/portal/requests", `{"by_user":7}`, 400},
			"approve unknown":                         {"PUT", "/api/portal/requests/approve/000000000000000000000000", "", 404},
			"update unknown":                          {"PUT", "/api/portal/requests/000000000000000000000000", fmt.Sprintf(`{"by_user":%q,"for_plan":"pol-token"}`, dev), 404},
			"update malformed":                        {"PUT", "/api/portal/requests/" + b, `{"by_user":`, 400},
			"delete unknown":                          {"DELETE", "/api/portal/requests/000000000000000000000000", "", 404},
			"approved filter garbage":                 {"GET", "/api/portal/requests?approved=maybe", "", 400},
		} {
			t.Run(name, func(t *testing.T) {
				wantEnvelope(t, in.do(tc.method, tc.path, tc.body), tc.status, "Error", "")
				if n := count(); n != before {
					t.Errorf("%d requests, want %d", n, before)
				}
			})
		}
	})
}

func TestDeveloperKeyRoutes(t *testing.T) {
	in, dev := portalWithCatalogue(t)

	// POST .../keys files and approves at once.
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"],"fields":{"foo":"bar"}}`))
	hash := keylens.HashKey(a.RawKey)
	if l := decodeAs[struct{ Data []map[string]any }](t, in.do("GET", "/api/portal/requests?approved=true", "")); len(l.Data) != 1 || l.Data[0]["key"] != hash {
		t.Errorf("POST keys did not leave an approved request for %s: %v", hash, l.Data)
	}
	// Deprecated subscriptions route: policy_id.
	sub := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/subscriptions", `{"policy_id":"pol-gold"}`))
	subHash := keylens.HashKey(sub.RawKey)
	if d := getDeveloper(t, in, dev); d.Keys[subHash][0] != "pol-gold" || len(d.Keys) != 2 {
		t.Errorf("keys after subscriptions route: %v", d.Keys)
	}
	// Deprecated policy change: GET {devId}/{keyId}/{policyId}.
	wantEnvelope(t, in.do("GET", "/api/portal/developers/"+dev+"/"+hash+"/pol-gold", ""), 200, "OK", "Data updated")
	if d := getDeveloper(t, in, dev); strings.Join(d.Keys[hash], ",") != "pol-gold" {
		t.Errorf("after deprecated policy change: %v", d.Keys)
	}
	// Deprecated quota reset and revoke: key/{apiId}/{keyId}/{devId}.
	wantEnvelope(t, in.do("POST", "/api/portal/developers/key/api-token/"+hash+"/"+dev+"/reset_quota", ""), 200, "OK", "Quota reset")
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/key/api-token/"+hash+"/"+dev, ""), 200, "OK", "Data deleted")
	// The raw key is accepted where a key id goes.
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+sub.RawKey, ""), 200, "OK", "Data deleted")
	if d := getDeveloper(t, in, dev); len(d.Keys) != 0 {
		t.Errorf("keys after revocations: %v", d.Keys)
	}
	// Deprecated OAuth app deletion with an API id.
	o := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"https://app.example.com/cb"}}`))
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/oauth/api-oauth/"+o.ClientID, ""), 200, "OK", "Data deleted")

	for name, tc := range map[string]struct {
		method, path, body string
		status             int
	}{
		"keys for unknown developer":      {"POST", "/api/portal/developers/000000000000000000000000/keys", `{"apply_policies":["pol-token"]}`, 404},
		"keys with unknown policy":        {"POST", "/api/portal/developers/" + dev + "/keys", `{"apply_policies":["pol-nope"]}`, 400},
		"keys malformed":                  {"POST", "/api/portal/developers/" + dev + "/keys", `{"apply_policies":[}`, 400},
		"policy change of unknown key":    {"PUT", "/api/portal/developers/" + dev + "/keys/deadbeef", `{"apply_policies":["pol-token"]}`, 404},
		"policy change to unknown policy": {"GET", "/api/portal/developers/" + dev + "/deadbeef/pol-nope", "", 400},
		"quota of unknown key":            {"POST", "/api/portal/developers/" + dev + "/keys/deadbeef/reset_quota", "", 404},
		"deprecated revoke unknown key":   {"DELETE", "/api/portal/developers/key/api/deadbeef/" + dev, "", 404},
		"unknown oauth app":               {"DELETE", "/api/portal/developers/oauth/nope", "", 404},
		"unknown developer subroute":      {"POST", "/api/portal/developers/" + dev + "/frobnicate", `{}`, 404},
		"unknown delete subroute":         {"DELETE", "/api/portal/developers/" + dev + "/frobs/x", "", 404},
	} {
		t.Run(name, func(t *testing.T) {
			wantEnvelope(t, in.do(tc.method, tc.path, tc.body), tc.status, "Error", "")
			if d := getDeveloper(t, in, dev); len(d.Keys) != 0 {
				t.Errorf("keys changed: %v", d.Keys)
			}
		})
	}
}

// TestChangeFeedOverHTTP is what a sidecar in another process relies on: a
// revocation arrives through a long poll while it waits.
func TestChangeFeedOverHTTP(t *testing.T) {
	in, dev := portalWithCatalogue(t)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	hash := keylens.HashKey(a.RawKey)

	type feed struct {
		Changes []keylens.Change
		Last    int64
		Reset   bool
	}
	all := decodeAs[feed](t, in.do("GET", "/api/keylens/changes?after=0", ""))
	if len(all.Changes) == 0 || all.Last != all.Changes[len(all.Changes)-1].Seq || all.Reset {
		t.Fatalf("feed from 0: %+v", all)
	}

	var wg sync.WaitGroup
	var pollAnswer []byte
	var pollErr error
	var elapsed time.Duration
	wg.Add(1)
	go func() { // no t.Fatal here: the answer is checked on the test's goroutine
		defer wg.Done()
		start := time.Now()
		req, _ := http.NewRequest("GET", in.AdminURL+fmt.Sprintf("/api/keylens/changes?after=%d&wait=20s", all.Last), nil)
		req.Header.Set("Authorization", in.Key)
		res, err := client.Do(withTest(req, t))
		if err != nil {
			pollErr = err
			return
		}
		defer res.Body.Close()
		pollAnswer, pollErr = io.ReadAll(res.Body)
		elapsed = time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond)
	wantEnvelope(t, in.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+hash, ""), 200, "OK", "Data deleted")
	wg.Wait()
	if pollErr != nil {
		t.Fatal(pollErr)
	}
	polled := decodeAs[feed](t, response{Status: 200, Body: pollAnswer})
	if len(polled.Changes) != 1 || polled.Changes[0].Kind != "key_revoked" || polled.Changes[0].KeyHash != hash {
		t.Fatalf("long poll answered %+v", polled)
	}
	// Reported, not asserted (timing is the machine's): how soon the poll answered.
	t.Logf("long poll answered %v after it started; the revocation was sent at about 200ms", elapsed)

	for _, q := range []string{"?after=-1", "?after=x", "?limit=0", "?wait=forever"} {
		wantEnvelope(t, in.do("GET", "/api/keylens/changes"+q, ""), 400, "Error", "")
	}
	wantEnvelope(t, in.doAuth("GET", "/api/keylens/changes", "", ""), 401, "Error", "Not authorised")
}

// TestRawKeyWithSlashInPath: standard base64 keys can hold "/", which a
// client sends as %2F; the key is still recognised and hashed.
func TestRawKeyWithSlashInPath(t *testing.T) {
	in, dev := portalWithCatalogue(t)
	// '?' is 0x3f: three in a row put six set bits on a base64 boundary, which encodes as "/".
	var raw string
	for i := 0; i < 1000 && !strings.Contains(raw, "/"); i++ {
		raw = keylens.KeyFor("5e9d9544a1dcd60001d0ed20", fmt.Sprintf("user%d???", i), "murmur64")
	}
	if !strings.Contains(raw, "/") {
		t.Fatal("no key with / among the candidates")
	}
	hash := keylens.HashKey(raw)
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev, `{"email":"ada@example.com","keys":{"`+hash+`":["pol-token"]}}`), 200, "OK", "Data updated")
	wantEnvelope(t, in.do("PUT", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), `{"apply_policies":["pol-gold"]}`), 200, "OK", "Data updated")
	if d := getDeveloper(t, in, dev); strings.Join(d.Keys[hash], ",") != "pol-gold" {
		t.Errorf("keys %v", d.Keys)
	}
}

// TestOrgID: --org-id (KEYLENS_ORG_ID) makes the gateway's org the portal's:
// developers created from then on belong to it and the keys generated for
// them embed it. Changing it later leaves stored developers in theirs.
func TestOrgID(t *testing.T) {
	const gatewayOrg, laterOrg = "5e9d9544a1dcd60001d0ed20", "5e9d9544a1dcd60001d0ed21"
	store := "sqlite:" + filepath.Join(t.TempDir(), "keylens.db")
	in := startKeylens(t, store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey}, "--org-id", gatewayOrg)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"ada@example.com"}`)
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	if org := keylens.KeyOrg(a.RawKey); org != gatewayOrg {
		t.Errorf("the key embeds org %q, want the gateway's %s", org, gatewayOrg)
	}
	d := decodeAs[developerOut](t, in.do("GET", "/api/portal/developers/"+dev, ""))
	c := decodeAs[struct {
		OrgID string `json:"org_id"`
	}](t, in.do("GET", "/api/portal/catalogue", ""))
	if d.OrgID != gatewayOrg || c.OrgID != gatewayOrg {
		t.Errorf("developer org %q, catalogue org %q, want %s", d.OrgID, c.OrgID, gatewayOrg)
	}
	in.stop()

	in = startKeylens(t, store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_ORG_ID=" + laterOrg})
	later := createDeveloper(t, in, `{"email":"grace@example.com"}`)
	b := decodeApproval(t, in.do("POST", "/api/portal/developers/"+later+"/keys", `{"apply_policies":["pol-token"]}`))
	a2 := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	if keylens.KeyOrg(b.RawKey) != laterOrg || keylens.KeyOrg(a2.RawKey) != gatewayOrg {
		t.Errorf("after the change: a new developer's key embeds %q (want %s), an older developer's %q (want %s)",
			keylens.KeyOrg(b.RawKey), laterOrg, keylens.KeyOrg(a2.RawKey), gatewayOrg)
	}
	if !strings.Contains(in.stderr.String(), "the portal's org changes") {
		t.Errorf("the change was not logged:\n%s", in.stderr)
	}
}
