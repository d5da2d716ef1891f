package sidecar_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sidecar"
)

// idp is an identity provider on loopback: a JWKS the test changes, and
// how often it was asked.
type idp struct {
	srv      *httptest.Server
	mu       sync.Mutex
	body     []byte
	status   int
	requests atomic.Int64
}

func newIDP(t testing.TB) *idp {
	p := &idp{status: 200}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(p.status)
		w.Write(p.body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// serve publishes keys (kid → public key) with the given answer status.
func (p *idp) serve(t testing.TB, status int, keys map[string]any) {
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	set.Keys = []map[string]string{}
	for kid, k := range keys {
		set.Keys = append(set.Keys, jwkOf(t, kid, k))
	}
	body, _ := json.Marshal(set)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status, p.body = status, body
}

func jwkOf(t testing.TB, kid string, k any) map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := k.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, _ := k.Bytes()
		return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		return map[string]string{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(k)}
	}
	t.Fatalf("no JWK for %T", k)
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func signed(t testing.TB, m jwt.SigningMethod, kid string, claims jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCentralJWKS: JWTs signed by an identity provider's JWKS resolve to
// the key their sub names; a new kid is picked up by one rate-limited
// fetch; unknown keys are refused; a failed fetch keeps the keys in use;
// per-key JWTs still resolve beside them.
func TestCentralJWKS(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.db.CentralJWT = true
	central := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt"}) // no material: the provider's
	const perKeySecret = "an-hmac-secret-of-32-characters!"
	perKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: perKeySecret})
	apiKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token"})

	rsaA, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edC, _ := ed25519.GenerateKey(rand.Reader)
	rsaOther, _ := rsa.GenerateKey(rand.Reader, 2048)
	p := newIDP(t)
	p.serve(t, 200, map[string]any{"a": &rsaA.PublicKey})

	const minRefresh = time.Minute
	if err := f.r.UseCentralJWT(sidecar.CentralJWT{JWKSURL: p.srv.URL, Issuer: "https://idp.example", Audience: "orders",
		MinRefresh: minRefresh}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	sidecar.SetJWKSClock(f.r, clk.now)
	if err := f.r.RefreshJWKS(ctx); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	n := 0
	claims := func(sub string) jwt.MapClaims { // distinct tokens: the resolver caches unknown ones
		n++
		return jwt.MapClaims{"sub": sub, "iss": "https://idp.example", "aud": []string{"orders", "other"}, "exp": exp, "jti": fmt.Sprint(n)}
	}
	resolves := func(tok string) bool {
		e, err := f.r.Resolve(ctx, []byte(tok))
		if err != nil && !errors.Is(err, sidecar.ErrUnknown) {
			t.Fatalf("a lookup failed: %v", err)
		}
		return err == nil && e.DeveloperID == f.dev.ID && e.KeyID == central.KeyHash
	}

	good := signed(t, jwt.SigningMethodRS256, "a", claims(central.RawKey), rsaA)
	e, err := f.r.Resolve(ctx, []byte("Bearer "+good))
	if err != nil || e.KeyID != central.KeyHash || e.DeveloperID != f.dev.ID || e.Expires != exp {
		t.Fatalf("a token of the provider: %+v, %v", e, err)
	}
	cred := []byte("Bearer " + good)
	if n := testing.AllocsPerRun(200, func() { _, _ = f.r.Resolve(ctx, cred) }); n != 0 {
		t.Errorf("a cached central JWT allocates %.1f times", n)
	}

	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(central.RawKey)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, tok := range map[string]string{
		"wrong issuer":         signed(t, jwt.SigningMethodRS256, "a", jwt.MapClaims{"sub": central.RawKey, "iss": "https://evil", "aud": "orders", "exp": exp}, rsaA),
		"wrong audience":       signed(t, jwt.SigningMethodRS256, "a", jwt.MapClaims{"sub": central.RawKey, "iss": "https://idp.example", "aud": "billing", "exp": exp}, rsaA),
		"expired":              signed(t, jwt.SigningMethodRS256, "a", jwt.MapClaims{"sub": central.RawKey, "iss": "https://idp.example", "aud": "orders", "exp": time.Now().Add(-time.Hour).Unix()}, rsaA),
		"no sub":               signed(t, jwt.SigningMethodRS256, "a", jwt.MapClaims{"iss": "https://idp.example", "aud": "orders", "exp": exp}, rsaA),
		"sub of no key":        signed(t, jwt.SigningMethodRS256, "a", claims("nobody"), rsaA),
		"sub of an API key":    signed(t, jwt.SigningMethodRS256, "a", claims(apiKey.RawKey), rsaA),
		"another key, kid a":   signed(t, jwt.SigningMethodRS256, "a", claims(central.RawKey), rsaOther),
		"HS256 with A's PEM":   signed(t, jwt.SigningMethodHS256, "a", claims(central.RawKey), []byte(pemPublic(t, &rsaA.PublicKey))),
		"PS256 on an RS256":    signed(t, jwt.SigningMethodPS256, "a", claims(central.RawKey), rsaA),
		"alg none":             withKid(noneTok, "a"),
		"no kid":               signed(t, jwt.SigningMethodRS256, "", claims(central.RawKey), rsaA),
		"the provider's kid b": signed(t, jwt.SigningMethodES256, "b", claims(central.RawKey), ecB),
	} {
		if resolves(tok) {
			t.Errorf("%s: resolves", name)
		}
	}
	// Each unknown kid asked once at most per interval: the first fetch
	// was at start, so none of these fetched.
	if got := p.requests.Load(); got != 1 {
		t.Errorf("%d JWKS fetches within the interval, want 1", got)
	}

	// Rotation: the provider adds b and c. Within the interval a token
	// with kid b is refused without a fetch; after it, one fetch picks the
	// new keys up, however many tokens ask.
	p.serve(t, 200, map[string]any{"a": &rsaA.PublicKey, "b": &ecB.PublicKey, "c": edPub})
	if resolves(signed(t, jwt.SigningMethodES256, "b", claims(central.RawKey), ecB)) || p.requests.Load() != 1 {
		t.Fatalf("a new kid within the interval: fetched %d times", p.requests.Load())
	}
	clk.add(minRefresh)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 20 {
		tok := signed(t, jwt.SigningMethodES256, "b", claims(central.RawKey), ecB)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e, err := f.r.Resolve(ctx, []byte(tok)); err == nil && e.KeyID == central.KeyHash {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 20 || p.requests.Load() != 2 {
		t.Errorf("after rotation: %d of 20 resolve, %d fetches (want 20, 2)", ok.Load(), p.requests.Load())
	}
	if !resolves(signed(t, jwt.SigningMethodEdDSA, "c", claims(central.RawKey), edC)) || !resolves(signed(t, jwt.SigningMethodRS256, "a", claims(central.RawKey), rsaA)) {
		t.Error("the rest of the new set")
	}
	// A flood of made-up kids costs the provider nothing more.
	for i := range 50 {
		resolves(signed(t, jwt.SigningMethodES256, fmt.Sprint("made-up-", i), claims(central.RawKey), ecB))
	}
	if p.requests.Load() != 2 {
		t.Errorf("made-up kids: %d fetches, want 2", p.requests.Load())
	}

	// A failed or empty fetch keeps the keys in use.
	for _, status := range []int{500, 200} {
		p.serve(t, status, nil)
		if err := f.r.RefreshJWKS(ctx); err == nil {
			t.Errorf("fetching a set with status %d and no keys: no error", status)
		}
		if !resolves(signed(t, jwt.SigningMethodRS256, "a", claims(central.RawKey), rsaA)) {
			t.Errorf("after a failed fetch (%d), the previous keys are gone", status)
		}
	}
	// Removed from the set: refused once the new set is in.
	p.serve(t, 200, map[string]any{"b": &ecB.PublicKey})
	if err := f.r.RefreshJWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if resolves(signed(t, jwt.SigningMethodRS256, "a", claims(central.RawKey), rsaA)) {
		t.Error("a key the provider removed still verifies")
	}

	// Per-key JWTs beside the provider's.
	if e, err := f.r.Resolve(ctx, []byte(signed(t, jwt.SigningMethodHS256, perKey.RawKey, jwt.MapClaims{"exp": exp}, []byte(perKeySecret)))); err != nil || e.KeyID != perKey.KeyHash {
		t.Errorf("a per-key JWT: %+v, %v", e, err)
	}
	// A key without material never verifies a token by its kid.
	if resolves(signed(t, jwt.SigningMethodHS256, central.RawKey, jwt.MapClaims{"exp": exp}, []byte(perKeySecret))) {
		t.Error("a central key verified a per-key token")
	}
	// Revoking the key refuses its cached JWTs.
	if err := f.db.RevokeKey(ctx, f.dev.ID, central.KeyHash); err != nil {
		t.Fatal(err)
	}
	f.r.Apply(keylens.Change{Kind: keylens.ChangeKeyRevoked, KeyHash: central.KeyHash})
	if resolves(good) {
		t.Error("a revoked key's JWT")
	}
}

// One static key instead of a JWKS: an HMAC secret or a public key.
// While the identity provider hangs a fetch of its JWKS, lookups wait for
// it only briefly (maxFetchWait, 1 s), not for the fetch's 10 s timeout: a
// per-key JWT (whose kid the set lacks) still resolves.
func TestJWKSFetchUnderWayHoldsNoLookup(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.db.CentralJWT = true
	const perKeySecret = "an-hmac-secret-of-32-characters!"
	perKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: perKeySecret})
	rsaA, _ := rsa.GenerateKey(rand.Reader, 2048)
	p := newIDP(t)
	p.serve(t, 200, map[string]any{"a": &rsaA.PublicKey})
	if err := f.r.UseCentralJWT(sidecar.CentralJWT{JWKSURL: p.srv.URL, MinRefresh: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := f.r.RefreshJWKS(ctx); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock() // the provider hangs
	hung := make(chan struct{})
	go func() { defer close(hung); _ = f.r.RefreshJWKS(ctx) }()
	for p.requests.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	tok := signed(t, jwt.SigningMethodHS256, perKey.RawKey, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}, []byte(perKeySecret))
	resolved := make(chan error, 1)
	go func() {
		e, err := f.r.Resolve(ctx, []byte("Bearer "+tok))
		if err == nil && e.KeyID != perKey.KeyHash {
			err = fmt.Errorf("resolved to %s", e.KeyID)
		}
		resolved <- err
	}()
	select {
	case err := <-resolved:
		if err != nil {
			t.Errorf("a per-key JWT during a hung JWKS fetch: %v", err)
		}
	case <-time.After(5 * time.Second): // the fetch's own timeout is 10 s
		t.Error("a lookup waited for the hung JWKS fetch")
	}
	p.mu.Unlock()
	<-hung
}

func TestCentralStaticKeys(t *testing.T) {
	ctx := context.Background()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	secret := []byte("the-identity-providers-secret-32b")
	for name, tt := range map[string]struct {
		c      sidecar.CentralJWT
		m      jwt.SigningMethod
		signer any
	}{
		"HMAC":       {sidecar.CentralJWT{HMACSecret: secret, IdentityClaim: "client_id"}, jwt.SigningMethodHS256, secret},
		"public key": {sidecar.CentralJWT{PublicKey: &rsaKey.PublicKey, IdentityClaim: "client_id"}, jwt.SigningMethodRS256, rsaKey},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.db.CentralJWT = true
			central := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt"})
			const perKeySecret = "an-hmac-secret-of-32-characters!"
			perKey := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-jwt", JWTSecret: perKeySecret})
			if err := f.r.UseCentralJWT(tt.c); err != nil {
				t.Fatal(err)
			}
			e, err := f.r.Resolve(ctx, []byte(signed(t, tt.m, "", jwt.MapClaims{"client_id": central.RawKey}, tt.signer)))
			if err != nil || e.KeyID != central.KeyHash {
				t.Errorf("central: %+v, %v", e, err)
			}
			if _, err := f.r.Resolve(ctx, []byte(signed(t, tt.m, "", jwt.MapClaims{"sub": central.RawKey}, tt.signer))); !errors.Is(err, sidecar.ErrUnknown) {
				t.Errorf("sub instead of the identity claim: %v", err)
			}
			if e, err := f.r.Resolve(ctx, []byte(signed(t, jwt.SigningMethodHS256, perKey.RawKey, jwt.MapClaims{"n": 1}, []byte(perKeySecret)))); err != nil || e.KeyID != perKey.KeyHash {
				t.Errorf("per-key beside central: %+v, %v", e, err)
			}
		})
	}
	for name, c := range map[string]sidecar.CentralJWT{
		"none":         {},
		"two":          {HMACSecret: secret, JWKSURL: "https://idp/jwks"},
		"short secret": {HMACSecret: []byte("short")},
		"not a key":    {PublicKey: "x"},
	} {
		if err := newFixture(t).r.UseCentralJWT(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseJWKS: whatever a JWKS URL answers, parsing keeps only well-formed
// signature keys with a kid, and never panics.
func FuzzParseJWKS(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, k := range []map[string]string{jwkOf(f, "e", &ec.PublicKey), jwkOf(f, "r", &rk.PublicKey), jwkOf(f, "o", pub)} {
		b, _ := json.Marshal(map[string]any{"keys": []any{k}})
		f.Add(b)
	}
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"x","crv":"P-256","x":"AA","y":"AA"},{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		kids, err := sidecar.ParseJWKS(body)
		if (err == nil) != (len(kids) > 0) {
			t.Fatalf("%q: %v and %d keys", body, err, len(kids))
		}
		for _, k := range kids {
			if k == "" {
				t.Fatal("a key without a kid")
			}
		}
	})
}
