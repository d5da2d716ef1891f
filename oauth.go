package keylens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"time"
)

// OAuth 2.0 client-credentials access tokens (RFC 6749 §4.4). A token is
// random and stored only as its SHA-256 (TokenHash); it carries its
// client's policy and resolves to the client's developer until it expires
// or is revoked.

// AccessTokenPrefix starts every access token keylens issues, so that a
// resolver tells one from an API key without a lookup.
const AccessTokenPrefix = "klat_"

// DefaultTokenTTL is how long an access token lives unless configured.
const DefaultTokenTTL = time.Hour

// NewAccessToken returns a new access token (256 random bits after
// AccessTokenPrefix) and its hash.
func NewAccessToken() (token, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents this since Go 1.24)
	token = AccessTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, TokenHash(token)
}

// IsAccessToken reports whether cred has the shape of a keylens access
// token.
func IsAccessToken(cred []byte) bool {
	return len(cred) == len(AccessTokenPrefix)+43 && string(cred[:len(AccessTokenPrefix)]) == AccessTokenPrefix
}

// TokenHash is the hash an access token is filed under: the lowercase hex
// SHA-256 of the whole token.
func TokenHash(token string) string { return HashKeyWith(token, HashSHA256) }

// TokenHashOf turns a token reference into the hash it is filed under: a
// 64-character lowercase hex string is a hash already (no token has that
// shape); anything else is a token.
func TokenHashOf(ref string) string {
	if len(ref) == 64 && isLowerHex(ref) {
		return ref
	}
	return TokenHash(ref)
}

// ClientSecretMatches compares an OAuth client's stored secret with the
// one presented, in constant time (of their SHA-256, so that not even the
// length leaks). An empty stored secret matches nothing.
func ClientSecretMatches(stored, presented string) bool {
	if stored == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(stored)), sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// NewClientSecret makes an OAuth client secret: the base64 of a random
// UUID, the form of Tyk's.
func NewClientSecret() string { return base64.StdEncoding.EncodeToString([]byte(RandomUUID())) }

// SecretRotation is what rotating an OAuth client's secret hands out,
// once: the new secret, and when the old one stops authenticating the
// client.
type SecretRotation struct {
	ClientID         string    `json:"client_id"`
	Secret           string    `json:"secret"`
	OldSecretExpires time.Time `json:"old_secret_expires"`
}

// ClientCredentials authenticate an OAuth client: its id and secret.
type ClientCredentials struct {
	ID, Secret string
}

// TokenGrant is what an access token grants: its client, the client's
// developer and policy, and its lifetime.
type TokenGrant struct {
	ClientID    string   `json:"client_id"`
	DeveloperID string   `json:"developer_id"`
	Policies    []string `json:"policies"`
	IssuedAt    int64    `json:"issued_at"`  // Unix seconds
	ExpiresAt   int64    `json:"expires_at"` // Unix seconds
}

// ErrInvalidClient is the one answer to an unknown client or a wrong
// secret: which of the two is not told.
var ErrInvalidClient = Errorf(EUNAUTHORIZED, "Unknown OAuth client or wrong client secret")

// TokenService issues and revokes access tokens on behalf of a client
// that authenticates itself: what a sidecar's /oauth/token and
// /oauth/revoke need (the SQL store, or a portal's admin API).
type TokenService interface {
	// IssueToken files the token with hash for the client c
	// authenticates, valid for ttl from now, and returns its grant.
	// EUNAUTHORIZED for an unknown client or a wrong secret (one
	// answer), ECONFLICT when the client's developer is inactive,
	// EINVALID for a hash that is not a TokenHash or ttl < 1 s.
	IssueToken(ctx context.Context, c ClientCredentials, hash string, ttl time.Duration) (*TokenGrant, error)
	// RevokeClientToken revokes the token with hash if it is c's (RFC
	// 7009 §2.1: the client authenticates; a token that is unknown,
	// expired or another client's is no error and changes nothing).
	// EUNAUTHORIZED as IssueToken.
	RevokeClientToken(ctx context.Context, c ClientCredentials, hash string) error
}

// TokenRevoker performs the Tyk Classic Portal API's two revocations, for the admin API and
// the developer portal. LocalRevoker revokes keylens's own tokens; with
// --tyk-gateway the tokens are the gateway's, and tykgateway.Revoker
// forwards to it.
type TokenRevoker interface {
	// RevokeToken revokes token (a token, or its hash) of client
	// clientID; hint is RFC 7009's token_type_hint ("" for none):
	// ENOTFOUND for an unknown client; an unknown token is no error
	// (RFC 7009 §2.2).
	RevokeToken(ctx context.Context, clientID, token, hint string) error
	// RevokeAllTokens revokes every token of client clientID, whose
	// secret must be secret: ENOTFOUND, EUNAUTHORIZED.
	RevokeAllTokens(ctx context.Context, clientID, secret string) error
}

// LocalRevoker revokes the tokens keylens issued, in its store.
type LocalRevoker struct{ Store TokenAdminService }

// RevokeToken revokes the token with the hash token is filed under.
func (l LocalRevoker) RevokeToken(ctx context.Context, clientID, token, _ string) error {
	return l.Store.RevokeToken(ctx, clientID, TokenHashOf(token))
}

// RevokeAllTokens revokes every token of the client.
func (l LocalRevoker) RevokeAllTokens(ctx context.Context, clientID, secret string) error {
	return l.Store.RevokeAllTokens(ctx, ClientCredentials{ID: clientID, Secret: secret})
}

// TokenAdminService is what the admin does with tokens: the Tyk Classic Portal API's two
// revocations, and pruning.
type TokenAdminService interface {
	// RevokeToken revokes client clientID's token with hash, if it has
	// one: ENOTFOUND for an unknown client; an unknown token changes
	// nothing and is no error.
	RevokeToken(ctx context.Context, clientID, hash string) error
	// RevokeAllTokens revokes every token of client c.ID, whose secret
	// c.Secret must be: ENOTFOUND for an unknown client, EUNAUTHORIZED
	// for a wrong secret (nothing is revoked).
	RevokeAllTokens(ctx context.Context, c ClientCredentials) error
	// PruneTokens removes tokens expired at now and those whose client
	// is gone; it returns how many. Rotated clients' previous secrets
	// whose grace ended (or whose client is gone) go too.
	PruneTokens(ctx context.Context, now time.Time) (int64, error)
}
