package identity

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AssertionIssuer is the iss of every keylens assertion.
const AssertionIssuer = "keylens"

// AssertionClaims are the claims of X-Developer-Assertion: the identity's
// members beside the registered ones (sub is the developer id).
type AssertionClaims struct {
	Identity
	jwt.RegisteredClaims
}

// Verifier checks X-Developer-Assertion tokens against a sidecar's JWKS
// (Ed25519 keys), fetched once and again when a token names a kid it does
// not know (at most every MinRefresh).
type Verifier struct {
	jwksURL    string
	http       *http.Client
	MinRefresh time.Duration

	mu      sync.Mutex
	keys    map[string]ed25519.PublicKey
	fetched time.Time
}

// NewVerifier verifies assertions of the sidecar at baseURL.
func NewVerifier(baseURL string, client *http.Client) *Verifier {
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	return &Verifier{jwksURL: baseURL + "/.well-known/jwks.json", http: client, MinRefresh: 10 * time.Second}
}

// Verify returns the identity a valid, unexpired assertion carries.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	var claims AssertionClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.key(ctx, kid)
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(AssertionIssuer), jwt.WithExpirationRequired())
	if err != nil {
		return nil, fmt.Errorf("identity: assertion: %w", err)
	}
	if claims.Subject != claims.DeveloperID {
		return nil, errors.New("identity: assertion subject does not match its developer")
	}
	id := claims.Identity
	return &id, nil
}

func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	if time.Since(v.fetched) < v.MinRefresh && v.keys != nil {
		return nil, errors.New("unknown kid")
	}
	keys, err := v.fetch(ctx)
	v.fetched = time.Now()
	if err != nil {
		return nil, err
	}
	v.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, errors.New("unknown kid")
}

func (v *Verifier) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, err
	}
	res, err := v.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: status %d", res.StatusCode)
	}
	var set struct {
		Keys []struct{ Kty, Crv, Kid, X string }
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return nil, err
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	return keys, nil
}
