package tykgateway

import (
	"context"

	"github.com/keylens/keylens"
)

// ClientOrgs is what Revoker needs of the store: a client's org
// (sqlstore.DB.OAuthClientOrg).
type ClientOrgs interface {
	OAuthClientOrg(ctx context.Context, clientID string) (string, error)
}

// Revoker performs the Tyk Classic Portal API's two token revocations when keylens
// provisions a gateway (--tyk-gateway): the gateway issues tokens to the
// clients it holds, and keylens's sidecars may still issue their own, so
// both are revoked. Local goes first: it answers ENOTFOUND for a client
// keylens does not hold and, for revoke_all, EUNAUTHORIZED for a wrong
// secret (the gateway answers 200 to a wrong one and revokes nothing).
// What the gateway refuses or cannot be asked is EBADGATEWAY, after
// keylens's own tokens are revoked.
type Revoker struct {
	Local   keylens.TokenRevoker
	Gateway *Client
	Clients ClientOrgs
}

var _ keylens.TokenRevoker = Revoker{}

// RevokeToken revokes one token of client clientID in the gateway; hint
// is passed on, "access_token" when none.
func (r Revoker) RevokeToken(ctx context.Context, clientID, token, hint string) error {
	if err := r.Local.RevokeToken(ctx, clientID, token, hint); err != nil {
		return err
	}
	org, err := r.Clients.OAuthClientOrg(ctx, clientID)
	if err != nil {
		return err
	}
	if hint == "" {
		hint = "access_token"
	}
	if err := r.Gateway.RevokeToken(ctx, token, hint, clientID, org); err != nil {
		return gatewayError("revoking the token", err)
	}
	return nil
}

// RevokeAllTokens revokes every token of client clientID in the gateway.
func (r Revoker) RevokeAllTokens(ctx context.Context, clientID, secret string) error {
	if err := r.Local.RevokeAllTokens(ctx, clientID, secret); err != nil {
		return err
	}
	org, err := r.Clients.OAuthClientOrg(ctx, clientID) // the secret was checked by Local
	if err != nil {
		return err
	}
	if err := r.Gateway.RevokeAllTokens(ctx, clientID, secret, org); err != nil {
		return gatewayError("revoking the client's tokens", err)
	}
	return nil
}
