package tykgateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
)

// Session metadata names the Tyk Dashboard writes into portal keys.
const (
	MetaDeveloperID      = "tyk_developer_id"
	MetaDeveloperEmail   = "tyk_developer_email"
	MetaKeyRequestFields = "tyk_key_request_fields"
	MetaUserFields       = "tyk_user_fields"
)

// Meta is the meta_data of a key of owner issued with keyFields: the
// Dashboard's members (the field sets as maps) and, because Tyk's
// $tyk_meta header templates render maps as empty, a flat string copy of
// each field, tyk_key_request_fields_<name> and tyk_user_fields_<name>,
// named as the keylens plugin names them.
func Meta(owner keylens.CredentialOwner, keyFields map[string]any) map[string]any {
	krf := make(map[string]any, len(keyFields))
	for k, v := range keyFields {
		krf[k] = v
	}
	uf := make(map[string]any, len(owner.Fields))
	for k, v := range owner.Fields {
		uf[k] = v
	}
	m := map[string]any{
		MetaDeveloperID: owner.ID, MetaDeveloperEmail: owner.Email,
		MetaKeyRequestFields: krf, MetaUserFields: uf,
	}
	for k, v := range keyFields {
		m[MetaKeyRequestFields+"_"+identity.MetaToken(k)] = identity.FieldString(v)
	}
	for k, v := range owner.Fields {
		m[MetaUserFields+"_"+identity.MetaToken(k)] = v
	}
	return m
}

// Desired is what the gateway's session of key k of owner must say:
// policies, alias, metadata, activation and, for a replaced key, the end
// of its grace period as expires. A deactivated developer's key carries
// the inactive policy instead of its own policies (Tyk ignores a key's own
// is_inactive when it has policies), and is_inactive in any case.
type Desired struct {
	Policies []string
	Alias    string
	Meta     map[string]any
	Inactive bool
	OrgID    string
	// Expires is a replaced key's grace end (Unix seconds); 0 leaves the
	// session's own expiry as it is.
	Expires int64
}

// DesiredFor computes Desired for key k of owner.
func DesiredFor(k *keylens.Key, owner keylens.CredentialOwner, inactivePolicy string) Desired {
	pols := append([]string{}, k.Policies...)
	if owner.Inactive && inactivePolicy != "" {
		pols = []string{inactivePolicy}
	}
	return Desired{Policies: pols, Alias: owner.Email, Meta: Meta(owner, k.Fields), Inactive: owner.Inactive, OrgID: owner.OrgID,
		Expires: k.ExpiresUnix()}
}

// Apply writes d into s, keeping every other member (quota, rate, access
// rights, and expiry unless d sets one).
func (d Desired) Apply(s Session) {
	s["apply_policies"] = d.Policies
	s["alias"] = d.Alias
	s["meta_data"] = d.Meta
	s["is_inactive"] = d.Inactive
	s["org_id"] = d.OrgID
	if d.Expires != 0 {
		s["expires"] = d.Expires
	}
}

// Provisioner creates approvals' credentials in the gateway: it is the
// store's keylens.Provisioner.
type Provisioner struct {
	Client *Client
	// Inactive replaces a deactivated developer's policies.
	Inactive *InactivePolicy
	Logger   *slog.Logger
}

var _ keylens.Provisioner = (*Provisioner)(nil)

// gatewayError is an EBADGATEWAY error naming what the gateway said.
func gatewayError(what string, err error) error {
	return keylens.Errorf(keylens.EBADGATEWAY, "Tyk gateway: %s: %s", what, err)
}

// Provision creates issued's credential for owner: a key by its id (an
// auth token or a JWT key's kid) or a Basic user by name, in owner's org,
// or an OAuth client. A key the gateway stores under another name or hash
// than keylens's is removed again and refused: the gateway's
// hash_key_function is not keylens's --key-hash-algorithm.
func (p *Provisioner) Provision(ctx context.Context, issued *keylens.Issued, owner keylens.CredentialOwner) (func(context.Context), error) {
	undo, err := p.provision(ctx, issued, owner)
	if err != nil {
		p.logger().Warn("an approval failed at the Tyk gateway; nothing was stored", "developer_id", owner.ID,
			"policy", issued.Approval.PolicyID, "err", keylens.ErrorMessage(err))
	}
	return undo, err
}

func (p *Provisioner) provision(ctx context.Context, issued *keylens.Issued, owner keylens.CredentialOwner) (func(context.Context), error) {
	// Nothing is provisioned before deactivation can stop it.
	if err := p.Inactive.Ensure(ctx, p.Client); err != nil {
		return nil, gatewayError("the inactive policy", err)
	}
	a := issued.Approval
	if c := a.OAuthClient; c != nil {
		return p.provisionOAuth(ctx, c, a.PolicyID, owner)
	}
	k := issued.Key
	s := Session{}
	DesiredFor(k, owner, p.Inactive.id()).Apply(s)
	s["expires"] = 0
	name, wantKey := keylens.KeyID(a.RawKey), a.RawKey
	switch k.AuthType {
	case keylens.AuthBasic:
		name, wantKey = a.RawKey, "" // the username; the gateway forms the key
		s["basic_auth_data"] = map[string]any{"password": a.Password, "hash_type": ""}
	case keylens.AuthJWT:
		secret := k.JWTSecret
		if secret == "" {
			secret = k.JWTPublicKey
		}
		// A key bound to an identity provider's JWTs (central JWT) has no
		// material of its own: the API's jwt_source verifies them, and the
		// key, named by the identity claim, carries the policies and the
		// developer's metadata.
		if secret != "" {
			s["jwt_data"] = map[string]any{"secret": secret}
		}
	}
	if name == "" {
		return nil, keylens.Errorf(keylens.EINTERNAL, "key %s has no id to create it by", k.Hash)
	}
	ans, err := p.Client.CreateKey(ctx, name, s)
	if err != nil {
		return nil, gatewayError("creating the key", err)
	}
	undo := func(ctx context.Context) { p.deleteCreated(ctx, ans, owner.OrgID) }
	if ans.KeyHash != k.Hash || (wantKey != "" && ans.Key != wantKey) {
		undo(ctx)
		why := "the gateway's hash_key_function differs from keylens's --key-hash-algorithm"
		if ans.KeyHash == "" {
			why = "the gateway does not hash keys (hash_keys is off); keylens addresses keys by their hash"
		}
		return nil, keylens.Errorf(keylens.EBADGATEWAY,
			"Tyk gateway stored the key under hash %q, not keylens's %q: %s", ans.KeyHash, k.Hash, why)
	}
	return undo, nil
}

// deleteCreated removes a key just created, logging a failure: the
// approval fails either way, and tyk sync reports the leftover.
func (p *Provisioner) deleteCreated(ctx context.Context, ans *KeyAnswer, org string) {
	var err error
	if ans.KeyHash != "" {
		err = p.Client.DeleteKey(ctx, ans.KeyHash)
	} else {
		err = p.Client.DeleteKeyByName(ctx, ans.Key, org)
	}
	if err != nil && !IsNotFound(err) {
		p.logger().Error("could not remove a key created in the Tyk gateway for an approval that failed; run keylens tyk sync",
			"key_hash", ans.KeyHash, "err", err)
	}
}

func (p *Provisioner) provisionOAuth(ctx context.Context, c *keylens.OAuthClient, policy string, owner keylens.CredentialOwner) (func(context.Context), error) {
	ans, err := p.Client.CreateOAuthClient(ctx, OAuthClient{
		ClientID: c.ClientID, Secret: c.Secret, RedirectURI: c.RedirectURI, PolicyID: policy,
		MetaData: Meta(owner, nil), Description: c.AppDescription,
	})
	if err != nil {
		return nil, gatewayError("creating the OAuth client", err)
	}
	undo := func(ctx context.Context) {
		if err := p.Client.DeleteOAuthClientEverywhere(ctx, c.ClientID); err != nil {
			p.logger().Error("could not remove an OAuth client created in the Tyk gateway for an approval that failed",
				"client_id", c.ClientID, "err", err)
		}
	}
	if ans.ClientID != c.ClientID || ans.Secret != c.Secret {
		undo(ctx)
		return nil, keylens.Errorf(keylens.EBADGATEWAY, "Tyk gateway did not keep the OAuth client id and secret keylens issued (it answered client %q)", ans.ClientID)
	}
	return undo, nil
}

func (p *Provisioner) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// DeleteOAuthClientEverywhere deletes client clientID from every OAuth API
// of the gateway (a client created without an API id is stored on each
// OAuth API of its policy). A client on none of them is no error.
func (c *Client) DeleteOAuthClientEverywhere(ctx context.Context, clientID string) error {
	apis, err := c.APIs(ctx)
	if err != nil {
		return err
	}
	for _, api := range apis {
		if !api.UseOAuth2 {
			continue
		}
		if err := c.DeleteOAuthClient(ctx, api.APIID, clientID); err != nil && !IsNotFound(err) {
			return fmt.Errorf("API %s: %w", api.APIID, err)
		}
	}
	return nil
}
