package sidecar

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
)

// jwtMethods are the algorithms a JWT may name at all; "none" is never
// among them. Which of them a given key accepts is pinned by its material
// in keyFor.
var jwtMethods = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA"}

// jwtAuthenticator takes a JWT, raw or after "Bearer ": signed by the
// central identity provider's keys when configured (authn_jwks.go), its
// identity claim names a jwt key; otherwise its kid names a jwt key, whose
// material (an HMAC secret or a public key) verifies it.
type jwtAuthenticator struct{ r *Resolver }

func (a jwtAuthenticator) authenticate(ctx context.Context, cred []byte) (*keylens.Credential, int64, error) {
	tok := bearer(cred)
	if !identity.IsJWT(tok) {
		return nil, 0, errNotMine // an API key may have two dots too
	}
	return a.r.lookupJWT(ctx, string(tok))
}

func (r *Resolver) lookupJWT(ctx context.Context, token string) (*keylens.Credential, int64, error) {
	if !numericDates(token) {
		return nil, 0, ErrUnknown
	}
	if r.central != nil {
		keyID, exp, err := r.central.verify(ctx, token)
		switch {
		case err == nil:
			return r.centralKey(ctx, keyID, exp)
		case !errors.Is(err, errNotCentral):
			return nil, 0, err
		}
	}
	var key *keylens.Credential
	claims := jwt.RegisteredClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods(jwtMethods), jwt.WithLeeway(r.opts.JWTLeeway), jwt.WithIssuedAt())
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			// RFC 7515 §4.1.11: extensions the recipient must
			// understand; keylens understands none.
			return nil, ErrUnknown
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, ErrUnknown
		}
		k, err := r.findKey(ctx, keylens.HashKey(kid))
		if errors.Is(err, ErrUnknown) {
			return nil, ErrUnknown
		} else if err != nil {
			return nil, storeError{err}
		}
		if k.Key.AuthType != keylens.AuthJWT {
			return nil, ErrUnknown
		}
		key = k
		return verificationKey(&k.Key, t.Method)
	})
	if err != nil {
		// A store failure stays a failure; everything else about a token
		// (malformed, bad signature, expired, wrong algorithm) is an
		// unknown credential.
		var se storeError
		if errors.As(err, &se) {
			return nil, 0, se.error
		}
		return nil, 0, ErrUnknown
	}
	var exp int64
	if claims.ExpiresAt != nil {
		exp = claims.ExpiresAt.Unix()
	}
	return key, exp, nil
}

// DefaultJWTLeeway is the clock skew tolerated on JWT dates.
const DefaultJWTLeeway = 30 * time.Second

// maxNumericDate is the latest exp, nbf or iat a token may carry: the end
// of year 9999. Later dates (exp=1e30, say) are not dates but garbage, and
// a credential that never expires in practice should say so by leaving
// exp out.
const maxNumericDate = 253402300799

// numericDates reports whether the token's exp, nbf and iat, when present,
// are what RFC 7519 §2 says they are: JSON numbers (not strings, which
// golang-jwt would read as numbers), finite, from 1970 to the year 9999.
func numericDates(token string) bool {
	first := strings.IndexByte(token, '.')
	last := strings.LastIndexByte(token, '.')
	if first < 0 || last <= first {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(token[first+1 : last])
	if err != nil {
		return true // malformed: the parser refuses it
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(payload, &claims) != nil {
		return true // not an object: the parser refuses it
	}
	for name, raw := range claims {
		// golang-jwt reads the registered claims whatever their case:
		// so are they checked, "EXP" as "exp".
		if !strings.EqualFold(name, "exp") && !strings.EqualFold(name, "nbf") && !strings.EqualFold(name, "iat") {
			continue
		}
		var n json.Number
		if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
			return false
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
			return false
		}
	}
	return true
}

// verificationKey returns the key to check a token signed with method,
// refusing any method the key's material does not pin: an HMAC secret
// verifies only HS*, a public key only its own family, so an HMAC token
// can never be checked against a public key used as a secret.
func verificationKey(k *keylens.Key, method jwt.SigningMethod) (any, error) {
	if k.JWTPublicKey == "" {
		if k.JWTSecret == "" {
			return nil, ErrUnknown
		}
		return pinned([]byte(k.JWTSecret), method)
	}
	pub, err := keylens.ParsePublicKeyPEM(k.JWTPublicKey)
	if err != nil {
		return nil, ErrUnknown
	}
	return pinned(pub, method)
}

// pinned returns key when it is material for method's family ([]byte for
// HS*, an RSA, ECDSA or Ed25519 public key for its own), ErrUnknown
// otherwise.
func pinned(key any, method jwt.SigningMethod) (any, error) {
	switch key.(type) {
	case []byte:
		if _, ok := method.(*jwt.SigningMethodHMAC); ok {
			return key, nil
		}
	case *rsa.PublicKey:
		switch method.(type) {
		case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
			return key, nil
		}
	case *ecdsa.PublicKey:
		if _, ok := method.(*jwt.SigningMethodECDSA); ok {
			return key, nil
		}
	case ed25519.PublicKey:
		if _, ok := method.(*jwt.SigningMethodEd25519); ok {
			return key, nil
		}
	}
	return nil, ErrUnknown
}

// storeError carries a store failure out of the JWT keyfunc.
type storeError struct{ error }
