package sidecar

import (
	"context"
	"time"

	"github.com/keylens/keylens/identity/clock"
	"github.com/keylens/keylens/portalstore"
)

// oauthAuthenticator takes an OAuth access token keylens issued
// (/oauth/token), raw or after "Bearer ": it is filed under its SHA-256
// and resolves to its client's developer until it expires. Its shape
// (portalstore.IsAccessToken) tells it from an API key without a lookup.
type oauthAuthenticator struct{ r *Resolver }

func (a oauthAuthenticator) authenticate(ctx context.Context, cred []byte) (*portalstore.Credential, int64, error) {
	tok := bearer(cred)
	if !portalstore.IsAccessToken(tok) {
		return nil, 0, errNotMine
	}
	start := time.Now()
	c, err := a.r.store.ResolveToken(ctx, portalstore.TokenHash(string(tok)))
	a.r.m.observeStore("token", start, err)
	if portalstore.ErrorCode(err) == portalstore.ENOTFOUND {
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
