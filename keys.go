package keylens

import (
	"context"
	"time"
)

// Key is an issued key as keylens keeps it: never the raw key, only its
// hash and what resolving it needs.
type Key struct {
	Hash          string         `json:"key_id"`
	DeveloperID   string         `json:"developer_id"`
	Policies      []string       `json:"policies"`
	AuthType      string         `json:"auth_type"` // "" for keys imported with a developer object
	RequestID     string         `json:"request_id,omitempty"`
	Fields        map[string]any `json:"key_request_fields"`
	DateCreated   time.Time      `json:"date_created"`
	QuotaResetAt  time.Time      `json:"quota_reset_at"`
	BasicUsername string         `json:"basic_username,omitempty"`
	// ExpiresAt is when a replaced key stops resolving, the end of its
	// grace period (zero for a key not replaced); ReplacedBy is the hash
	// of the key that replaced it. Every resolver refuses the key from
	// ExpiresAt on, and the store removes it soon after.
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	ReplacedBy string    `json:"replaced_by,omitempty"`

	BasicPasswordHash string `json:"-"` // bcrypt
	// JWT verification material: an HMAC secret or a PEM public key.
	JWTSecret    string `json:"-"`
	JWTPublicKey string `json:"-"`
}

// KeyService files, approves and manages keys.
type KeyService interface {
	// CreateKeyRequest validates and stores r (never approved at
	// creation). EINVALID when by_user is not a developer or a policy is
	// not in the catalogue.
	CreateKeyRequest(ctx context.Context, r *KeyRequest) error
	// FindKeyRequestByID returns the request with its developer and
	// catalogue entries embedded; ENOTFOUND if none.
	FindKeyRequestByID(ctx context.Context, id string) (*KeyRequest, error)
	FindKeyRequests(ctx context.Context, f KeyRequestFilter) ([]*KeyRequest, int, error)
	// UpdateKeyRequest replaces a request's client-set members (not its
	// approval state or key). ENOTFOUND, EINVALID.
	UpdateKeyRequest(ctx context.Context, id string, r *KeyRequest) error
	DeleteKeyRequest(ctx context.Context, id string) error
	// ApproveKeyRequest issues what the first policy's catalogue entry
	// names (see Approval) and gives the developer the key, in one
	// transaction. ECONFLICT if already approved: a request never yields
	// a second key.
	ApproveKeyRequest(ctx context.Context, id string) (*Approval, error)
	// IssueKey files a request for developer devID and approves it.
	IssueKey(ctx context.Context, devID string, r *KeyRequest) (*Approval, error)
	// SetKeyPolicies replaces the policies of a developer's key.
	SetKeyPolicies(ctx context.Context, devID, keyHash string, policies []string) error
	// RotateKey replaces developer devID's key keyHash with a new key of
	// the same kind, policies and key-request fields (Issuer.Rotate),
	// which resolves at once; the old key resolves until r.Grace ends
	// (GraceEnd), then stops and is removed (ExpireKeys); with no grace
	// it is revoked at once. One transaction; the developer's
	// subscriptions and the key request point at the new key. ENOTFOUND
	// when devID holds no such key; EFORBIDDEN when the developer is
	// inactive; ECONFLICT when the key is itself in its grace, already
	// replaced; EINVALID for a grace outside 0 to the store's maximum
	// (CheckGrace) or jwt material that does not parse.
	RotateKey(ctx context.Context, devID, keyHash string, r KeyRotation) (*Rotation, error)
	// RotateOAuthSecret gives developer devID's OAuth client clientID a
	// new secret (NewClientSecret); the old one keeps authenticating the
	// client until grace ends (GraceEnd), both compared in constant time.
	// Tokens already issued are kept. The errors of RotateKey, with
	// ECONFLICT for a client whose previous secret is still in its grace;
	// EINVALID while OAuth clients are provisioned into a gateway, whose
	// clients hold one secret.
	RotateOAuthSecret(ctx context.Context, devID, clientID string, grace time.Duration) (*SecretRotation, error)
	// ExpireKeys removes the replaced keys whose grace ended by now, each
	// recorded as a revocation in the change feed and the audit trail,
	// and answers how many it removed and when the next grace ends (zero
	// when none is running). Resolving refuses an expired key before it
	// is removed: this only tidies.
	ExpireKeys(ctx context.Context) (removed int, next time.Time, err error)
	// RevokeKey removes a developer's key; it stops resolving at once.
	RevokeKey(ctx context.Context, devID, keyHash string) error
	// ResetKeyQuota records that the key's quota was reset now.
	ResetKeyQuota(ctx context.Context, devID, keyHash string) error
	// DeleteOAuthClient removes an OAuth client by its client id.
	DeleteOAuthClient(ctx context.Context, clientID string) error
	// FindDeveloperKeys returns the keys of developer devID, oldest
	// first, without their secrets (hashes of basic passwords, JWT
	// material); none for an unknown developer.
	FindDeveloperKeys(ctx context.Context, devID string) ([]*Key, error)
	// FindKey returns the key with hash; ENOTFOUND if none.
	FindKey(ctx context.Context, hash string) (*Key, error)
	// FindKeyByBasicUsername returns the basic-auth key of username.
	FindKeyByBasicUsername(ctx context.Context, username string) (*Key, error)
}
