package sidecar

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keylens/keylens"
)

// Central JWT verification: JWTs signed by an identity provider, verified
// against its JWKS (fetched over HTTP(S)), one HMAC secret or one public
// key, and resolved to the key whose id is their identity claim, as Tyk's
// jwt_identity_base_field does. The algorithm is pinned by the key
// material, as for per-key JWTs (pinned), and by a JWK's own "alg".

// CentralJWT configures central verification; exactly one of JWKSURL,
// HMACSecret and PublicKey is set.
type CentralJWT struct {
	JWKSURL    string
	HMACSecret []byte
	PublicKey  any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	// Issuer and Audience, when set, must be the token's iss and one of
	// its aud.
	Issuer, Audience string
	// IdentityClaim names the claim holding the key id; default "sub".
	IdentityClaim string
	// MinRefresh is the least time between two fetches of the JWKS that
	// a token with an unknown kid causes; default 30 s.
	MinRefresh time.Duration
	// HTTPClient fetches the JWKS; default one with a 10 s timeout.
	HTTPClient *http.Client
}

// DefaultJWKSMinRefresh is CentralJWT.MinRefresh's default.
const DefaultJWKSMinRefresh = 30 * time.Second

// check reports what is wrong with c.
func (c *CentralJWT) check() error {
	n := 0
	for _, set := range []bool{c.JWKSURL != "", len(c.HMACSecret) > 0, c.PublicKey != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("central JWT needs exactly one of a JWKS URL, an HMAC secret and a public key")
	}
	if len(c.HMACSecret) > 0 && len(c.HMACSecret) < keylens.MinHMACSecret {
		return fmt.Errorf("a central HMAC secret must be at least %d bytes", keylens.MinHMACSecret)
	}
	if c.PublicKey != nil {
		if _, err := pinned(c.PublicKey, jwt.SigningMethodEdDSA); err != nil {
			if _, err := pinned(c.PublicKey, jwt.SigningMethodRS256); err != nil {
				if _, err := pinned(c.PublicKey, jwt.SigningMethodES256); err != nil {
					return errors.New("the central public key must be RSA, ECDSA or Ed25519")
				}
			}
		}
	}
	return nil
}

// centralVerifier verifies centrally signed JWTs.
type centralVerifier struct {
	c      CentralJWT
	parser *jwt.Parser
	keys   *keySet // nil without a JWKS URL
}

func newCentralVerifier(c CentralJWT, leeway time.Duration) (*centralVerifier, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.IdentityClaim == "" {
		c.IdentityClaim = "sub"
	}
	if c.MinRefresh <= 0 {
		c.MinRefresh = DefaultJWKSMinRefresh
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(jwtMethods), jwt.WithLeeway(leeway), jwt.WithIssuedAt()}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v := &centralVerifier{c: c, parser: jwt.NewParser(opts...)}
	if c.JWKSURL != "" {
		v.keys = &keySet{url: c.JWKSURL, client: c.HTTPClient, minRefresh: c.MinRefresh, now: time.Now}
	}
	return v, nil
}

// errNotCentral: the token is not signed by the identity provider's keys
// (its kid is none of theirs, or the one static key does not verify it);
// per-key verification may still take it.
var errNotCentral = errors.New("not a centrally signed JWT")

// verify checks token against the central keys and returns the key id its
// identity claim names and its exp (0 for none). errNotCentral when no
// central key verifies it; ErrUnknown when one does but the token is not
// acceptable (expired, wrong issuer or audience, no identity claim).
func (v *centralVerifier) verify(ctx context.Context, token string) (keyID string, exp int64, err error) {
	claims := jwt.MapClaims{}
	var keyFound bool
	_, err = v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, ErrUnknown // RFC 7515 §4.1.11: none understood
		}
		key, err := v.keyFor(ctx, t)
		keyFound = err == nil
		return key, err
	})
	if !keyFound || errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		// No central key for it, or the one there is did not sign it
		// (a per-key token, with the central HMAC secret or public
		// key configured): not the provider's.
		return "", 0, errNotCentral
	}
	if err != nil {
		// A token one of the provider's keys took but that does not
		// verify, or whose claims do not hold, is nobody's.
		return "", 0, ErrUnknown
	}
	keyID, _ = claims[v.c.IdentityClaim].(string)
	if keyID == "" {
		return "", 0, ErrUnknown
	}
	if e, err := claims.GetExpirationTime(); err == nil && e != nil {
		exp = e.Unix()
	}
	return keyID, exp, nil
}

// keyFor is the central key for t: the static key, or the JWK its kid
// names (fetching the set again, at most once per MinRefresh, for a kid
// not in it), pinned to t's method.
func (v *centralVerifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	switch {
	case len(v.c.HMACSecret) > 0:
		return pinned(v.c.HMACSecret, t.Method)
	case v.c.PublicKey != nil:
		return pinned(v.c.PublicKey, t.Method)
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNotCentral
	}
	k, ok := v.keys.get(kid)
	if !ok {
		v.keys.refresh(ctx, false)
		if k, ok = v.keys.get(kid); !ok {
			return nil, errNotCentral
		}
	}
	if k.alg != "" && k.alg != t.Method.Alg() {
		return nil, ErrUnknown
	}
	return pinned(k.key, t.Method)
}

// jwk is one usable key of a JWKS.
type jwk struct {
	key any    // a public key
	alg string // the JWK's alg, when it names one
}

// keySet is a JWKS fetched over HTTP(S). The keys in use are replaced only
// by a set that fetched and parsed: until then the previous ones stay.
type keySet struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	now        func() time.Time

	keys     atomic.Pointer[map[string]jwk]
	mu       sync.Mutex    // guards last and inflight
	last     time.Time     // when the last fetch started
	inflight chan struct{} // closed when the fetch under way ends; nil when none
	fetches  atomic.Int64
	lastErr  atomic.Pointer[error]
}

func (s *keySet) get(kid string) (jwk, bool) {
	m := s.keys.Load()
	if m == nil {
		return jwk{}, false
	}
	k, ok := (*m)[kid]
	return k, ok
}

// maxFetchWait bounds how long a lookup waits for a fetch under way: the
// new set of a rotation is usually in within it, and a provider that hangs
// does not hold every unknown kid (and every per-key JWT) for the fetch's
// whole timeout.
const maxFetchWait = time.Second

// refresh fetches the set again, unless one was fetched less than
// minRefresh ago (and force is false): a stream of tokens with made-up
// kids costs the identity provider one request per interval at most. One
// fetch runs at a time; a refresh that finds one under way waits for it,
// at most maxFetchWait unless forced.
func (s *keySet) refresh(ctx context.Context, force bool) error {
	s.mu.Lock()
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		var timeout <-chan time.Time
		if !force {
			timeout = time.After(maxFetchWait)
		}
		select {
		case <-ch:
		case <-ctx.Done():
		case <-timeout:
		}
		return nil
	}
	if !force && !s.last.IsZero() && s.now().Sub(s.last) < s.minRefresh {
		s.mu.Unlock()
		return nil
	}
	s.last = s.now()
	ch := make(chan struct{})
	s.inflight = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
		close(ch)
	}()
	s.fetches.Add(1)
	keys, err := s.fetch(ctx)
	if err != nil {
		s.lastErr.Store(&err)
		return err
	}
	s.lastErr.Store(nil)
	s.keys.Store(&keys)
	return nil
}

// maxJWKS bounds a JWKS document.
const maxJWKS = 1 << 20

func (s *keySet) fetch(ctx context.Context) (map[string]jwk, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the JWKS: %s answered %d", s.url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("fetching the JWKS: %w", err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("the JWKS at %s is larger than %d bytes", s.url, maxJWKS)
	}
	return parseJWKS(body)
}

// parseJWKS reads the signature keys of a JWKS (RFC 7517): RSA, EC (P-256,
// P-384, P-521) and OKP (Ed25519) public keys with a kid. Keys for
// encryption, symmetric keys and keys without a kid are left out; a set
// with no usable key is an error, so that it cannot replace a good one.
func parseJWKS(body []byte) (map[string]jwk, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("the JWKS does not parse: %w", err)
	}
	keys := map[string]jwk{}
	for _, raw := range set.Keys {
		var k struct {
			Kty, Kid, Use, Alg, Crv, N, E, X, Y string
		}
		if json.Unmarshal(raw, &k) != nil || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pub, err := jwkPublicKey(k.Kty, k.Crv, k.N, k.E, k.X, k.Y)
		if err != nil {
			continue
		}
		keys[k.Kid] = jwk{key: pub, alg: k.Alg}
	}
	if len(keys) == 0 {
		return nil, errors.New("the JWKS holds no usable signature key")
	}
	return keys, nil
}

// jwkPublicKey builds the public key of a JWK's members (RFC 7518 §6).
func jwkPublicKey(kty, crv, n, e, x, y string) (any, error) {
	b64 := base64.RawURLEncoding
	switch kty {
	case "RSA":
		nb, err1 := b64.DecodeString(n)
		eb, err2 := b64.DecodeString(e)
		if err1 != nil || err2 != nil || len(eb) == 0 || len(eb) > 4 || len(nb) < 2048/8 {
			return nil, errors.New("bad RSA key")
		}
		exp := new(big.Int).SetBytes(eb)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(exp.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, errors.New("unsupported curve")
		}
		size := (curve.Params().BitSize + 7) / 8
		xb, err1 := b64.DecodeString(x)
		yb, err2 := b64.DecodeString(y)
		if err1 != nil || err2 != nil || len(xb) != size || len(yb) != size {
			return nil, errors.New("bad EC key")
		}
		// The point is checked to be on the curve.
		return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, xb...), yb...))
	case "OKP":
		xb, err := b64.DecodeString(x)
		if crv != "Ed25519" || err != nil || len(xb) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key")
		}
		return ed25519.PublicKey(xb), nil
	}
	return nil, errors.New("unsupported key type")
}

// UseCentralJWT turns on central JWT verification. Call it before the
// resolver serves, then RefreshJWKS.
func (r *Resolver) UseCentralJWT(c CentralJWT) error {
	v, err := newCentralVerifier(c, r.opts.JWTLeeway)
	if err != nil {
		return err
	}
	r.central = v
	return nil
}

// RefreshJWKS fetches the central JWKS now, whenever it was last fetched:
// at start and periodically (a token with an unknown kid fetches it too,
// at most once per MinRefresh). A failed fetch keeps the keys in use.
// Without a JWKS it does nothing.
func (r *Resolver) RefreshJWKS(ctx context.Context) error {
	if r.central == nil || r.central.keys == nil {
		return nil
	}
	return r.central.keys.refresh(ctx, true)
}

// centralKey is the jwt key whose id a centrally verified JWT names.
func (r *Resolver) centralKey(ctx context.Context, keyID string, exp int64) (*keylens.Credential, int64, error) {
	k, err := r.findKey(ctx, keylens.HashKey(keyID))
	if err != nil {
		return nil, 0, err
	}
	if k.Key.AuthType != keylens.AuthJWT {
		return nil, 0, ErrUnknown
	}
	return k, exp, nil
}
