package tykgateway

import (
	"context"

	"github.com/keylens/keylens/portalstore"
)

// ClientOrgs is what Revoker needs of the store: a client's org, and its
// secret checked (sqlstore.DB.OAuthClientOrg).
type ClientOrgs interface {
	OAuthClientOrg(ctx context.Context, c portalstore.ClientCredentials, checkSecret bool) (string, error)
}

// Revoker performs the seed's two token revocations in the gateway, whose
// OAuth tokens they are when keylens provisions it (--tyk-gateway). The
// client must be one keylens holds (ENOTFOUND otherwise, as with keylens's
// own tokens), and for revoke_all the secret must be its secret: the
// gateway answers 200 to a wrong one and revokes nothing, keylens answers
// 401. What the gateway refuses or cannot be asked is EBADGATEWAY.
type Revoker struct {
	Gateway *Client
	Clients ClientOrgs
}

var _ portalstore.TokenRevoker = Revoker{}

// RevokeToken revokes one token of client clientID in the gateway; hint
// is passed on, "access_token" when none.
func (r Revoker) RevokeToken(ctx context.Context, clientID, token, hint string) error {
	org, err := r.Clients.OAuthClientOrg(ctx, portalstore.ClientCredentials{ID: clientID}, false)
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
	org, err := r.Clients.OAuthClientOrg(ctx, portalstore.ClientCredentials{ID: clientID, Secret: secret}, true)
	if err != nil {
		return err
	}
	if err := r.Gateway.RevokeAllTokens(ctx, clientID, secret, org); err != nil {
		return gatewayError("revoking the client's tokens", err)
	}
	return nil
}
