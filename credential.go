package keylens

import (
	"context"
)

// Credential is a stored key with just what resolving it needs of its
// owner: read in one step, so that the owner cannot vanish between two
// reads, and carrying no secret beyond the key's own verification
// material (never the owner's other keys or OAuth client secrets).
type Credential struct {
	Key   Key             `json:"key"`
	Owner CredentialOwner `json:"owner"`
	// Token is set for an OAuth access token: Key is then the token's
	// view as a key (its hash, the client's policy, AuthType oauth).
	Token *TokenGrant `json:"token,omitempty"`
}

// CredentialOwner is what an identity needs of a key's developer.
type CredentialOwner struct {
	ID       string            `json:"id"`
	Email    string            `json:"email"`
	OrgID    string            `json:"org_id"`
	Fields   map[string]string `json:"fields"`
	Inactive bool              `json:"inactive"`
}

// CredentialService resolves stored credentials: what a sidecar reads.
type CredentialService interface {
	// ResolveKey returns the key with hash and its owner; ENOTFOUND if
	// none.
	ResolveKey(ctx context.Context, hash string) (*Credential, error)
	// ResolveBasicUser returns the basic-auth key of username and its
	// owner; ENOTFOUND if none.
	ResolveBasicUser(ctx context.Context, username string) (*Credential, error)
	// ResolveToken returns the OAuth access token with hash (TokenHash),
	// its client's grant and the client's developer; ENOTFOUND if none,
	// expired, or its client is gone.
	ResolveToken(ctx context.Context, hash string) (*Credential, error)
}

// Owner is what a credential of d carries of them.
func (d *Developer) Owner() CredentialOwner {
	return CredentialOwner{ID: d.ID, Email: d.Email, OrgID: d.OrgID, Fields: d.Fields, Inactive: d.Inactive}
}
