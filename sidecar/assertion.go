package sidecar

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keylens/keylens/identity"
)

// Signer makes X-Developer-Assertion: a short-lived EdDSA JWT carrying the
// identity, which an upstream verifies against /.well-known/jwks.json
// instead of trusting plain headers.
type Signer struct {
	key  ed25519.PrivateKey
	kid  string
	ttl  time.Duration
	jwks []byte
}

// assertion is a signed token cached on an entry until refreshAt.
type assertion struct {
	token     []byte
	refreshAt int64 // Unix seconds
}

// NewSigner signs with key; assertions live ttl (default 60 s).
func NewSigner(key ed25519.PrivateKey, ttl time.Duration) *Signer {
	if ttl <= 0 {
		ttl = time.Minute
	}
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	s := &Signer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12]), ttl: ttl}
	s.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": s.kid,
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	return s
}

// LoadSigner reads an Ed25519 private key (PKCS #8 PEM) from path, or
// generates one when path is "" (assertions then verify only until restart).
func LoadSigner(path string, ttl time.Duration) (*Signer, error) {
	if path == "" {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return NewSigner(key, ttl), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New(path + ": not an Ed25519 private key")
	}
	return NewSigner(key, ttl), nil
}

// JWKS is the public key set to serve at /.well-known/jwks.json.
func (s *Signer) JWKS() []byte { return s.jwks }

// assertionFor returns e's assertion, signing a new one when the cached one
// has used two thirds of its life.
func (s *Signer) assertionFor(e *Entry, now time.Time) []byte {
	if a := e.assert.Load(); a != nil && now.Unix() < a.refreshAt {
		return a.token
	}
	exp := now.Add(s.ttl)
	if e.Expires != 0 && e.Expires < exp.Unix() {
		exp = time.Unix(e.Expires, 0)
	}
	claims := identity.AssertionClaims{
		Identity: *e.Identity(),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: identity.AssertionIssuer, Subject: e.DeveloperID,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = s.kid
	signed, err := t.SignedString(s.key)
	if err != nil {
		return nil
	}
	a := &assertion{token: []byte(signed), refreshAt: now.Add(s.ttl * 2 / 3).Unix()}
	e.assert.Store(a)
	return a.token
}
