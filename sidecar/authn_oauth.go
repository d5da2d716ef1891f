package sidecar

import (
	"context"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/clock"
)

// oauthAuthenticator takes an OAuth access token keylens issued
// (/oauth/token), raw or after "Bearer ": it is filed under its SHA-256
// and resolves to its client's developer until it expires. Its shape
// (keylens.IsAccessToken) tells it from an API key without a lookup.
type oauthAuthenticator struct{ r *Resolver }

func (a oauthAuthenticator) authenticate(ctx context.Context, cred []byte) (*keylens.Credential, int64, error) {
	tok := bearer(cred)
	if !keylens.IsAccessToken(tok) {
		return nil, 0, errNotMine
	}
	start := time.Now()
	c, err := a.r.store.ResolveToken(ctx, keylens.TokenHash(string(tok)))
	a.r.m.observeStore("token", start, err)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return nil, 0, ErrUnknown
	} else if err != nil {
		return nil, 0, err
	}
	// Expired by this clock, whatever the store's says.
	if c.Token == nil || c.Token.ExpiresAt <= clock.Now().Wall/1e9 {
		return nil, 0, ErrUnknown
	}
	return c, c.Token.ExpiresAt, nil
}
