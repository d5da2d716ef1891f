package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/gateway"
)

// TestAuthHookResolvesOAuthTokens: an OAuth access token from the sidecar's
// /oauth/token passes the auth hook as its client's developer, with its
// hash as X-Key-Id, and a revocation through the Tyk Classic Portal API's route is refused
// in the gateway within a second although cache_ttl is an hour.
func TestAuthHookResolvesOAuthTokens(t *testing.T) {
	newKey(t, "catalogue@example.com") // the shared catalogue first: this one extends it
	admin(t, "POST", "/api/portal/catalogue", `{"apis":[{"name":"Payments","policy_id":"pol-pay","api_id":"api-pay","auth_type":"authToken"},
		{"name":"Partner","policy_id":"pol-oauth","api_id":"api-pay","auth_type":"oauth"}]}`, nil)
	var env struct{ Message string }
	admin(t, "POST", "/api/portal/developers", `{"email":"oauth@example.com","fields":{"Plan":"gold"}}`, &env)
	dev := env.Message
	var client struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"secret"`
	}
	admin(t, "POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-oauth"]}`, &client)

	res, err := http.PostForm(kl.sidecar+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {client.ClientID}, "client_secret": {client.Secret}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if res.StatusCode != 200 || json.Unmarshal(b, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("/oauth/token: %d %s", res.StatusCode, b)
	}
	sum := sha256.Sum256([]byte(tok.AccessToken))

	def := api(t, `,"cache_ttl":"1h","negative_cache_ttl":"1h"`)
	auth := func() int {
		r := request(def, "", nil, "Bearer "+tok.AccessToken)
		rec, next := gateway.RunHook(KeylensAuth, r)
		if next {
			s := ctx.GetSession(r)
			if s == nil || s.MetaData["tyk_developer_id"] != dev || r.Header.Get("X-Key-Id") != hex.EncodeToString(sum[:]) ||
				r.Header.Get("X-Developer-Policies") != "pol-oauth" || s.Expires > time.Now().Unix()+tok.ExpiresIn+1 {
				t.Errorf("a token's session %+v, headers %v", s, r.Header)
			}
			return 200
		}
		return rec.Code
	}
	if code := auth(); code != 200 {
		t.Fatalf("a token: %d", code)
	}
	st := stateFor(def)
	waitFor(t, "the follower reads the feed", func() bool { return st.res.followed.Load() })
	if auth() != 200 {
		t.Fatal("a token refused")
	}
	admin(t, "POST", "/oauth-clients/"+client.ClientID+"/revoke", `{"token":"`+tok.AccessToken+`"}`, nil)
	start := time.Now()
	waitFor(t, "the revoked token refused", func() bool { return auth() == 401 })
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the revocation took %v", d)
	}
}
