package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keylens/keylens/identity"
)

const rawKey = "eyJvcmciOiJvcmciLCJpZCI6InNlY3JldCIsImgiOiJtdXJtdXI2NCJ9"

func testServer(h http.HandlerFunc) *httptest.Server { return httptest.NewServer(h) }

// fetch asks a server answering with h for rawKey.
func fetch(t *testing.T, h http.HandlerFunc, o identity.ClientOptions) (*identity.Identity, error) {
	t.Helper()
	srv := testServer(h)
	defer srv.Close()
	return identity.NewClient(srv.URL, o).Fetch(context.Background(), rawKey)
}

func answer(status int, contentType, outcome, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		if outcome != "" {
			w.Header().Set(identity.OutcomeHeader, outcome)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

const goodBody = `{"developer_id":"dev1","email":"ada@example.com","org_id":"o","fields":{},"key_id":"cac572e018c60de0","policies":["p"],"key_request_fields":{}}`

// TestFetchAcceptsOnlyTheSidecarsAnswers: only a well-formed identity
// authenticates, and only a sidecar's marked 401/403 means unknown or
// inactive. Everything else is an error saying what is wrong, treated by
// callers as the sidecar being unavailable.
func TestFetchAcceptsOnlyTheSidecarsAnswers(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		// An echo service: 200 with the request as JSON, raw key included.
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "path": r.URL.Path, "headers": r.Header})
	}
	adminAPI := answer(401, "application/json", "", `{"Status":"Error","Message":"Not authorised","Meta":null}`)
	for _, tt := range []struct {
		name    string
		h       http.HandlerFunc
		want    error  // an answer, or nil for an error
		wantMsg string // in the error
	}{
		{"identity", answer(200, "application/json", "", goodBody), nil, ""},
		{"identity, charset", answer(200, "application/json; charset=utf-8", "", goodBody), nil, ""},
		{"unknown", answer(401, "application/json", identity.OutcomeUnknown, `{"error":"unknown or missing key"}`), identity.ErrUnknownKey, ""},
		{"inactive", answer(403, "application/json", identity.OutcomeInactive, `{"error":"developer inactive"}`), identity.ErrInactive, ""},
		{"echo server", echo, nil, "not a keylens sidecar: the 200 answer names no developer_id and no key_id"},
		{"admin API", adminAPI, nil, "not a keylens sidecar: answered 401 without X-Keylens-Outcome"},
		{"someone's 403", answer(403, "text/html", "", "<h1>Forbidden</h1>"), nil, "answered 403 without X-Keylens-Outcome"},
		{"crossed outcome", answer(401, "application/json", identity.OutcomeInactive, "{}"), nil, `answered 401 with X-Keylens-Outcome "inactive"`},
		{"not JSON", answer(200, "text/plain", "", goodBody), nil, `answered 200 with Content-Type "text/plain", not application/json`},
		{"no content type", answer(200, "", "", goodBody), nil, "not application/json"},
		{"no key id", answer(200, "application/json", "", `{"developer_id":"dev1"}`), nil, "names no key_id"},
		{"no developer id", answer(200, "application/json", "", `{"key_id":"abc"}`), nil, "names no developer_id"},
		{"an array", answer(200, "application/json", "", `[1,2]`), nil, "a JSON array, not an object"},
		{"malformed", answer(200, "application/json", "", `{"developer_id":`), nil, "not an identity (malformed JSON"},
		{"a field of the wrong type", answer(200, "application/json", "", `{"developer_id":7,"key_id":"k"}`), nil, "developer_id is a JSON number"},
		{"not found", answer(404, "application/json", "", `{"error":"not found"}`), nil, "not a keylens sidecar: answered 404 to GET /developer"},
		{"store down", answer(503, "application/json", "", `{"error":"key store unavailable"}`), nil, "sidecar answered 503"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, err := fetch(t, tt.h, identity.ClientOptions{})
			switch {
			case tt.want == nil && tt.wantMsg == "":
				if err != nil || id.DeveloperID != "dev1" || id.KeyID != "cac572e018c60de0" {
					t.Fatalf("got %+v, %v; want the identity", id, err)
				}
			case tt.want != nil:
				if !errors.Is(err, tt.want) || id != nil {
					t.Fatalf("got %+v, %v; want %v", id, err, tt.want)
				}
			default:
				if err == nil || id != nil {
					t.Fatalf("got %+v, %v; want an error", id, err)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not say %q", err, tt.wantMsg)
				}
				if errors.Is(err, identity.ErrUnknownKey) || errors.Is(err, identity.ErrInactive) {
					t.Errorf("error %q passes for an answer", err)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), rawKey) {
					t.Errorf("error %q quotes the answer", err)
				}
			}
		})
	}
}

// TestFetchRequiresAValidAssertion: with a Verifier, an identity counts
// only with a valid assertion of the same developer and key, signed by a
// key of the sidecar's JWKS.
func TestFetchRequiresAValidAssertion(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(k ed25519.PrivateKey, dev, keyID string, exp time.Time) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, identity.AssertionClaims{
			Identity: identity.Identity{DeveloperID: dev, KeyID: keyID},
			RegisteredClaims: jwt.RegisteredClaims{Issuer: identity.AssertionIssuer, Subject: dev,
				ExpiresAt: jwt.NewNumericDate(exp)},
		})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
		"x": base64.RawURLEncoding.EncodeToString(pub)}}})
	later := time.Now().Add(time.Minute)
	for _, tt := range []struct {
		name      string
		assertion string
		wantMsg   string
	}{
		{"valid", sign(key, "dev1", "cac572e018c60de0", later), ""},
		{"missing", "", "sent no X-Developer-Assertion"},
		{"forged", sign(otherKey, "dev1", "cac572e018c60de0", later), "assertion"},
		{"expired", sign(key, "dev1", "cac572e018c60de0", time.Now().Add(-time.Minute)), "assertion"},
		{"another key", sign(key, "dev1", "ffffffffffffffff", later), "another developer or key"},
		{"garbage", "not.a.jwt", "assertion"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/.well-known/jwks.json" {
					_, _ = w.Write(jwks)
					return
				}
				if tt.assertion != "" {
					w.Header().Set("X-Developer-Assertion", tt.assertion)
				}
				answer(200, "application/json", "", goodBody)(w, r)
			}))
			defer srv.Close()
			c := identity.NewClient(srv.URL, identity.ClientOptions{Verifier: identity.NewVerifier(srv.URL, nil)})
			id, err := c.Fetch(context.Background(), rawKey)
			if tt.wantMsg == "" {
				if err != nil || id == nil || id.DeveloperID != "dev1" {
					t.Fatalf("valid assertion refused: %v", err)
				}
				return
			}
			if err == nil || id != nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("got %+v, %v; want an error saying %q", id, err, tt.wantMsg)
			}
		})
	}
}

// countingSidecar answers /developer with h and counts the requests.
func countingSidecar(t *testing.T, h http.HandlerFunc) (*identity.Client, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return identity.NewClient(srv.URL, identity.ClientOptions{TTL: time.Minute, NegativeTTL: time.Minute}), &n
}

// TestLookupCaches: Lookup asks the sidecar once per credential while an
// answer is fresh, for identities and for unknown and inactive answers;
// failures are never cached; a credential's own expiry ends its caching;
// Forget drops everything.
func TestLookupCaches(t *testing.T) {
	ctx := context.Background()
	failing := errors.New("any failure")
	for _, tt := range []struct {
		name      string
		h         http.HandlerFunc
		wantErr   error // nil: the identity
		wantAsked int64 // after three lookups
	}{
		{"identity", answer(200, "application/json", "", goodBody), nil, 1},
		{"unknown", answer(401, "application/json", identity.OutcomeUnknown, `{}`), identity.ErrUnknownKey, 1},
		{"inactive", answer(403, "application/json", identity.OutcomeInactive, `{}`), identity.ErrInactive, 1},
		{"sidecar failing", answer(503, "application/json", "", `{}`), failing, 3},
		{"not a sidecar", answer(404, "text/plain", "", `no`), identity.ErrNotSidecar, 3},
		{"expired credential", answer(200, "application/json", "",
			strings.Replace(goodBody, `"policies"`, `"expires":1000,"policies"`, 1)), nil, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, asked := countingSidecar(t, tt.h)
			for range 3 {
				id, err := c.Lookup(ctx, rawKey)
				switch tt.wantErr {
				case nil:
					if err != nil || id == nil || id.DeveloperID != "dev1" {
						t.Fatalf("Lookup: %+v, %v; want the identity", id, err)
					}
				case failing:
					if err == nil || id != nil || errors.Is(err, identity.ErrUnknownKey) || errors.Is(err, identity.ErrInactive) {
						t.Fatalf("Lookup: %+v, %v; want a failure", id, err)
					}
				default:
					if !errors.Is(err, tt.wantErr) || id != nil {
						t.Fatalf("Lookup: %+v, %v; want %v", id, err, tt.wantErr)
					}
				}
			}
			if got := asked.Load(); got != tt.wantAsked {
				t.Errorf("three lookups asked the sidecar %d times, want %d", got, tt.wantAsked)
			}
			c.Forget()
			_, _ = c.Lookup(ctx, rawKey)
			if got := asked.Load(); got != tt.wantAsked+1 {
				t.Errorf("after Forget the sidecar was asked %d times, want %d", got, tt.wantAsked+1)
			}
		})
	}
	t.Run("a change of the feed", func(t *testing.T) {
		c, asked := countingSidecar(t, answer(200, "application/json", "", goodBody))
		_, _ = c.Lookup(ctx, rawKey)
		c.Apply(identity.Change{Kind: identity.ChangeKeyRevoked, KeyHash: "ffffffffffffffff"}) // another key
		_, _ = c.Lookup(ctx, rawKey)
		if got := asked.Load(); got != 1 {
			t.Errorf("another key's change: the sidecar was asked %d times, want 1", got)
		}
		c.Apply(identity.Change{Kind: identity.ChangeKeyRevoked, KeyHash: "cac572e018c60de0"}) // this key
		_, _ = c.Lookup(ctx, rawKey)
		if got := asked.Load(); got != 2 {
			t.Errorf("this key's change: the sidecar was asked %d times, want 2", got)
		}
	})
	t.Run("per credential", func(t *testing.T) {
		c, asked := countingSidecar(t, answer(200, "application/json", "", goodBody))
		_, _ = c.Lookup(ctx, rawKey)
		_, _ = c.Lookup(ctx, "Bearer "+rawKey)
		if _, err := c.Lookup(ctx, ""); !errors.Is(err, identity.ErrUnknownKey) {
			t.Errorf("empty credential: %v", err)
		}
		if got := asked.Load(); got != 2 {
			t.Errorf("two credentials and an empty one asked %d times, want 2", got)
		}
	})
}

// TestVerifierRefuses: an assertion counts only from the sidecar's issuer,
// for the developer it names, signed with EdDSA by a key of the JWKS; an
// unknown kid fetches the JWKS again, at most once per MinRefresh.
func TestVerifierRefuses(t *testing.T) {
	ctx := context.Background()
	pub1, key1, _ := ed25519.GenerateKey(rand.Reader)
	pub2, key2, _ := ed25519.GenerateKey(rand.Reader)
	var jwksFetches atomic.Int64
	var published atomic.Value // []byte
	jwksOf := func(keys map[string]ed25519.PublicKey) []byte {
		var set []map[string]string
		for kid, pub := range keys {
			set = append(set, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": base64.RawURLEncoding.EncodeToString(pub)})
		}
		b, _ := json.Marshal(map[string]any{"keys": set})
		return b
	}
	published.Store(jwksOf(map[string]ed25519.PublicKey{"k1": pub1}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jwksFetches.Add(1)
		_, _ = w.Write(published.Load().([]byte))
	}))
	defer srv.Close()

	type claims = identity.AssertionClaims
	valid := func() claims {
		return claims{Identity: identity.Identity{DeveloperID: "dev1", KeyID: "k"},
			RegisteredClaims: jwt.RegisteredClaims{Issuer: identity.AssertionIssuer, Subject: "dev1",
				ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}}
	}
	sign := func(c claims, kid string, k ed25519.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v := identity.NewVerifier(srv.URL, nil)
	v.MinRefresh = time.Hour
	if id, err := v.Verify(ctx, sign(valid(), "k1", key1)); err != nil || id.DeveloperID != "dev1" {
		t.Fatalf("valid assertion: %+v, %v", id, err)
	}

	wrongIssuer := valid()
	wrongIssuer.Issuer = "someone-else"
	otherSubject := valid()
	otherSubject.Subject = "dev2"
	noExpiry := valid()
	noExpiry.ExpiresAt = nil
	expired := valid()
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, valid()).SignedString([]byte(string(pub1)))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, valid()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, token := range map[string]string{
		"wrong issuer":              sign(wrongIssuer, "k1", key1),
		"subject mismatch":          sign(otherSubject, "k1", key1),
		"no expiry":                 sign(noExpiry, "k1", key1),
		"expired":                   sign(expired, "k1", key1),
		"signed by another key":     sign(valid(), "k1", key2),
		"HS256 with the public key": hs,
		"alg none":                  none,
	} {
		if id, err := v.Verify(ctx, token); err == nil || id != nil {
			t.Errorf("%s: accepted (%+v)", name, id)
		}
	}
	if n := jwksFetches.Load(); n != 1 {
		t.Fatalf("the JWKS was fetched %d times for known kids, want once", n)
	}

	// The sidecar rotates to k2. Within MinRefresh an unknown kid is
	// refused without asking again; after it, the JWKS is fetched again
	// and the new key verifies.
	published.Store(jwksOf(map[string]ed25519.PublicKey{"k1": pub1, "k2": pub2}))
	rotated := sign(valid(), "k2", key2)
	if _, err := v.Verify(ctx, rotated); err == nil || jwksFetches.Load() != 1 {
		t.Errorf("unknown kid within MinRefresh: %v after %d fetches; want refused without a fetch", err, jwksFetches.Load())
	}
	v.MinRefresh = 0
	if id, err := v.Verify(ctx, rotated); err != nil || id.DeveloperID != "dev1" || jwksFetches.Load() != 2 {
		t.Errorf("rotated key: %+v, %v after %d fetches; want verified after a second fetch", id, err, jwksFetches.Load())
	}
	if _, err := v.Verify(ctx, sign(valid(), "k9", key1)); err == nil {
		t.Error("a kid the JWKS does not hold was accepted")
	}
}
