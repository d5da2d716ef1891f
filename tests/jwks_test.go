package tests

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keylens/keylens"
)

// TestCentralJWTWithAnIdentityProvider: a jwt request filed without a
// secret is refused (400, naming the flag) by a keylens without central
// JWT, and approved by one started with --jwt-jwks-url; JWTs the identity
// provider signs, naming the approved key id in sub, then resolve through
// the sidecar to the developer, and a key the provider adds later is
// picked up.
func TestCentralJWTWithAnIdentityProvider(t *testing.T) {
	keyA, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyB, _ := rsa.GenerateKey(rand.Reader, 2048)
	var published atomic.Value
	jwks := func(keys map[string]*rsa.PublicKey) {
		var set []map[string]string
		for kid, k := range keys {
			set = append(set, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		b, _ := json.Marshal(map[string]any{"keys": set})
		published.Store(b)
	}
	jwks(map[string]*rsa.PublicKey{"a": &keyA.PublicKey})
	var fetches atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(published.Load().([]byte))
	}))
	defer idp.Close()

	// Without central JWT: 400, saying which flag enables it.
	plain := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	wantEnvelope(t, plain.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev := createDeveloper(t, plain, `{"email":"ada@example.com"}`)
	r := plain.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-jwt"]}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), "--jwt-jwks-url") {
		t.Errorf("a jwt request without a secret, no central JWT: %d %s", r.Status, r.Body)
	}

	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey}, "--jwt-jwks-url", idp.URL,
		"--jwt-issuer", "https://idp.example", "--jwt-audience", "orders", "--jwt-jwks-refresh", "1s")
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", testCatalogue), 200, "OK", "")
	dev = createDeveloper(t, in, `{"email":"ada@example.com","fields":{"Plan":"gold"}}`)
	// Filed as a custom portal files it (no secret), then approved.
	req := decodeAs[envelope](t, in.do("POST", "/api/portal/requests", `{"by_user":"`+dev+`","for_plan":"pol-jwt","apply_policies":["pol-jwt"]}`))
	a := decodeApproval(t, in.do("PUT", "/api/portal/requests/approve/"+req.Message, ""))
	if a.RawKey == "" {
		t.Fatalf("approval %+v", a)
	}
	token := func(kid string, key *rsa.PrivateKey, sub string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": sub, "iss": "https://idp.example", "aud": "orders",
			"exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	auth := func(tok string) response {
		return in.sidecar("GET", "/auth", nil, map[string]string{"Authorization": "Bearer " + tok})
	}
	r = auth(token("a", keyA, a.RawKey))
	if r.Status != 200 || r.Header.Get("X-Developer-Id") != dev || r.Header.Get("X-Key-Id") != keylens.HashKey(a.RawKey) ||
		r.Header.Get("X-Developer-Field-Plan") != "gold" {
		t.Fatalf("a provider's JWT: %d %v %s", r.Status, r.Header, r.Body)
	}
	for name, tok := range map[string]string{
		"unknown key":      token("b", keyB, a.RawKey),
		"signed by B as a": token("a", keyB, a.RawKey),
		"unknown sub":      token("a", keyA, "someone-else"),
	} {
		if r := auth(tok); r.Status != 401 {
			t.Errorf("%s: %d", name, r.Status)
		}
	}
	// The provider rotates: b appears. After --jwt-jwks-refresh, one
	// token with kid b fetches the new set.
	jwks(map[string]*rsa.PublicKey{"a": &keyA.PublicKey, "b": &keyB.PublicKey})
	start := time.Now()
	for auth(token("b", keyB, a.RawKey)).Status != 200 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the new key was not picked up (%d fetches)", fetches.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the rotated key verified %v after it was published; %d fetches in all", time.Since(start).Round(time.Millisecond), fetches.Load())
}
