package tests

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// oauthSidecars are the three places a token can be issued and resolved:
// the sidecar of `keylens serve`, a lone sidecar on the same store (a
// second process), and a lone sidecar reading through the portal's admin
// API (--portal, which issues through the admin API too).
type oauthSidecars struct {
	portal *instance
	names  []string
	urls   []string
}

func startOAuthFleet(t *testing.T, args ...string) *oauthSidecars {
	t.Helper()
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey}, args...)
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	return &oauthSidecars{portal: in, names: []string{"serve", "--store", "--portal"}, urls: []string{
		in.SidecarURL,
		startLoneSidecar(t, append([]string{"--store", in.Store}, args...)...),
		startLoneSidecar(t, append([]string{"--portal", in.AdminURL, "--admin-key", in.Key}, args...)...),
	}}
}

// client approves an oauth request of a new developer: its id and secret.
func (f *oauthSidecars) client(t *testing.T, email string) (dev, id, secret string) {
	t.Helper()
	dev = createDeveloper(t, f.portal, `{"email":"`+email+`"}`)
	a := decodeApproval(t, f.portal.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-oauth"]}`))
	if a.ClientID == "" || a.Secret == "" {
		t.Fatalf("approval %+v", a)
	}
	return dev, a.ClientID, a.Secret
}

func postForm(t *testing.T, u string, form url.Values, auth string) response {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return send(t, req)
}

// token gets a token from sidecar i, Basic-authenticated.
func (f *oauthSidecars) token(t *testing.T, i int, id, secret string) string {
	t.Helper()
	r := postForm(t, f.urls[i]+"/oauth/token", url.Values{"grant_type": {"client_credentials"}},
		"Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("token from %s: %d %s", f.names[i], r.Status, r.Body)
	}
	return out.AccessToken
}

func (f *oauthSidecars) status(t *testing.T, i int, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", f.urls[i]+"/auth", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return send(t, req).Status
}

// everywhereWithin waits until every sidecar answers want for token, for
// at most limit.
func (f *oauthSidecars) everywhereWithin(t *testing.T, what, token string, want int, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for i := range f.urls {
		for f.status(t, i, token) != want {
			if time.Since(start) > limit {
				t.Fatalf("%s: the %s sidecar answers %d after %v, want %d", what, f.names[i], f.status(t, i, token), limit, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("%s: every sidecar answers %d after %v", what, want, time.Since(start).Round(time.Millisecond))
}

// TestOAuthTokensAcrossProcesses: an OAuth client of an approved request
// gets tokens from any sidecar; each resolves on every credential path of
// every sidecar to the developer; each way of revoking (RFC 7009 on a
// sidecar, the Tyk Classic Portal API's revoke and revoke_all on the admin API, deleting
// the client, deleting the developer) is refused by every sidecar process
// within a second.
func TestOAuthTokensAcrossProcesses(t *testing.T) {
	f := startOAuthFleet(t)
	dev, id, secret := f.client(t, "ada@example.com")

	var tokens []string
	for i := range f.urls {
		tokens = append(tokens, f.token(t, i, id, secret))
	}
	for _, tok := range tokens {
		for i, u := range f.urls {
			if s := f.status(t, i, tok); s != 200 {
				t.Fatalf("a token on the %s sidecar: /auth %d", f.names[i], s)
			}
			req, _ := http.NewRequest("GET", u+"/developer", nil)
			req.Header.Set("Authorization", tok)
			r := send(t, req)
			var idn map[string]any
			if r.Status != 200 || json.Unmarshal(r.Body, &idn) != nil || idn["developer_id"] != dev || idn["client_id"] != id ||
				idn["email"] != "ada@example.com" {
				t.Errorf("/developer on %s: %d %s", f.names[i], r.Status, r.Body)
			}
			if strings.Contains(string(r.Body), tok) {
				t.Error("the token is echoed")
			}
			in := postForm(t, u+"/introspect", url.Values{"token": {tok}}, "")
			var intro map[string]any
			if in.Status != 200 || json.Unmarshal(in.Body, &intro) != nil || intro["active"] != true || intro["client_id"] != id ||
				intro["scope"] != "pol-oauth" || intro["exp"].(float64)-intro["iat"].(float64) != 3600 {
				t.Errorf("/introspect on %s: %d %s", f.names[i], in.Status, in.Body)
			}
		}
	}

	// RFC 7009 on each sidecar, the others refuse it.
	for i := range f.urls {
		r := postForm(t, f.urls[i]+"/oauth/revoke", url.Values{"token": {tokens[i]}, "client_id": {id}, "client_secret": {secret}}, "")
		if r.Status != 200 {
			t.Fatalf("/oauth/revoke on %s: %d %s", f.names[i], r.Status, r.Body)
		}
		f.everywhereWithin(t, "RFC 7009 revocation on the "+f.names[i]+" sidecar", tokens[i], 401, time.Second)
	}

	// The Tyk Classic Portal API's revoke, verbatim.
	tok := f.token(t, 0, id, secret)
	f.everywhereWithin(t, "a new token", tok, 200, time.Second)
	wantEnvelope(t, f.portal.do("POST", "/oauth-clients/"+id+"/revoke", `{"token":"`+tok+`","token_type_hint":"access_token"}`),
		200, "OK", "token revoked successfully")
	f.everywhereWithin(t, "the Tyk Classic Portal API's revoke", tok, 401, time.Second)

	// revoke_all: a wrong secret is 401 and revokes nothing.
	a, b := f.token(t, 1, id, secret), f.token(t, 2, id, secret)
	wantEnvelope(t, f.portal.do("POST", "/api/portal/oauth-clients/"+id+"/revoke_all", `{"client_secret":"wrong"}`), 401, "Error", "Wrong client secret")
	f.everywhereWithin(t, "after a refused revoke_all", a, 200, time.Second)
	wantEnvelope(t, f.portal.do("POST", "/oauth-clients/"+id+"/revoke_all", `{"client_secret":"`+secret+`"}`), 200, "OK", "tokens revoked successfully")
	f.everywhereWithin(t, "revoke_all", a, 401, time.Second)
	f.everywhereWithin(t, "revoke_all", b, 401, time.Second)

	// Deleting the client; then a second client's developer.
	c := f.token(t, 2, id, secret)
	f.everywhereWithin(t, "a token after revoke_all", c, 200, time.Second)
	wantEnvelope(t, f.portal.do("DELETE", "/api/portal/developers/oauth/"+id, ""), 200, "OK", "")
	f.everywhereWithin(t, "deleting the client", c, 401, time.Second)
	if r := postForm(t, f.urls[0]+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, ""); r.Status != 401 {
		t.Errorf("a deleted client gets a token: %d %s", r.Status, r.Body)
	}
	dev2, id2, secret2 := f.client(t, "grace@example.com")
	d := f.token(t, 1, id2, secret2)
	f.everywhereWithin(t, "the second developer's token", d, 200, time.Second)
	wantEnvelope(t, f.portal.do("DELETE", "/api/portal/developers/"+dev2, ""), 200, "OK", "Data deleted")
	f.everywhereWithin(t, "deleting the developer", d, 401, time.Second)
}

// TestOAuthTokenExpiry: with --oauth-token-ttl 2s a token answers 200,
// then 401 on every sidecar once its two seconds are up.
func TestOAuthTokenExpiry(t *testing.T) {
	f := startOAuthFleet(t, "--oauth-token-ttl", "2s")
	_, id, secret := f.client(t, "ada@example.com")
	tok := f.token(t, 2, id, secret)
	issued := time.Now()
	f.everywhereWithin(t, "a fresh token", tok, 200, time.Second)
	f.everywhereWithin(t, "expiry", tok, 401, 4*time.Second)
	if age := time.Since(issued); age < 900*time.Millisecond { // lives ttl whole seconds from the second of issue
		t.Errorf("refused after %v, before it expired", age)
	}
}
