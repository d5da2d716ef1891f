package keylens

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keylens/keylens/identity"
)

// KeyRequest is a developer's request for a key to one or more policies,
// in Tyk's shape. PortalDeveloper, CatalogueEntry and Catalogues are filled
// on reads of a single request, as Tyk embeds them.
type KeyRequest struct {
	ID             string         `json:"id"`
	Key            string         `json:"key"` // the hash of the key approval created
	OrgID          string         `json:"org_id"`
	ForAPI         string         `json:"for_api"`
	ForPlan        string         `json:"for_plan"`
	ApplyPolicies  []string       `json:"apply_policies"`
	RemovePolicies []string       `json:"remove_policies"`
	ByUser         string         `json:"by_user"`
	Fields         map[string]any `json:"fields"`
	Approved       bool           `json:"approved"`
	DateCreated    time.Time      `json:"date_created"`
	Version        string         `json:"version"`
	JWTSecret      string         `json:"jwt_secret"`
	Certificate    string         `json:"certificate"`
	OAuthInfo      OAuthInfo      `json:"oauth_info"`
	// ShowOnce keeps what approving the request issues (sealed under the
	// secrets key, when set) until its developer has seen it once in the
	// developer portal (AccountService.TakeReveals). Requests filed in the
	// portal set it; it is not part of Tyk's shape.
	ShowOnce bool `json:"-"`

	PortalDeveloper *Developer       `json:"portal_developer,omitempty"`
	CatalogueEntry  *CatalogueEntry  `json:"catalogue_entry,omitempty"`
	Catalogues      []CatalogueEntry `json:"catalogues,omitempty"`
}

// MarshalJSON writes the request with jwt_secret empty: the secret is
// write-only, kept until approval and then only with the key.
func (r KeyRequest) MarshalJSON() ([]byte, error) {
	type plain KeyRequest
	p := plain(r)
	p.JWTSecret = ""
	return json.Marshal(p)
}

// OAuthInfo carries what an OAuth client is created with.
type OAuthInfo struct {
	RedirectURI string `json:"redirect_uri"`
}

// Normalize applies Tyk's aliases and defaults: for_plan is the deprecated
// spelling of a single apply_policies entry; version defaults to v2.
func (r *KeyRequest) Normalize() {
	if len(r.ApplyPolicies) == 0 && r.ForPlan != "" {
		r.ApplyPolicies = []string{r.ForPlan}
	}
	if r.ForPlan == "" && len(r.ApplyPolicies) > 0 {
		r.ForPlan = r.ApplyPolicies[0]
	}
	if r.Version == "" {
		r.Version = "v2"
	}
	if r.Fields == nil {
		r.Fields = map[string]any{}
	}
	if r.ApplyPolicies == nil {
		r.ApplyPolicies = []string{}
	}
	if r.RemovePolicies == nil {
		r.RemovePolicies = []string{}
	}
}

// Validate checks what a request needs before it touches the store.
func (r *KeyRequest) Validate() error {
	if r.ByUser == "" {
		return Errorf(EINVALID, "by_user (the developer's id) is required")
	}
	if len(r.ApplyPolicies) == 0 {
		return Errorf(EINVALID, "apply_policies (or for_plan) needs at least one policy")
	}
	if len(r.ApplyPolicies) > 100 {
		return Errorf(EINVALID, "A key request applies at most 100 policies")
	}
	for _, p := range r.ApplyPolicies {
		if p == "" || len(p) > maxIDLength {
			return Errorf(EINVALID, "Policy ids must be 1 to %d characters", maxIDLength)
		}
	}
	if len(r.Fields) > MaxFieldCount {
		return Errorf(EINVALID, "A key request has at most %d fields", MaxFieldCount)
	}
	if err := ValidateFieldNames("fields", slices.Collect(maps.Keys(r.Fields))); err != nil {
		return err
	}
	if b, err := json.Marshal(r.Fields); err != nil || len(b) > 64<<10 {
		return Errorf(EINVALID, "Key request fields are limited to 64 KiB")
	}
	if len(r.JWTSecret) > 16<<10 || len(r.Certificate) > 16<<10 || len(r.OAuthInfo.RedirectURI) > MaxFieldLength {
		return Errorf(EINVALID, "jwt_secret, certificate or oauth_info is too long")
	}
	if LooksSealed(r.JWTSecret) {
		return Errorf(EINVALID, "jwt_secret must not start with %q", SealedPrefix)
	}
	return nil
}

// ValidateRedirectURI accepts an OAuth redirect URI a client may be sent
// to (RFC 6749 §3.1.2 and the OAuth 2.0 security BCP): absolute, https, or
// http on a loopback host only (a native app's listener), with no
// fragment and no credentials. javascript:, data: and every other scheme
// are refused.
func ValidateRedirectURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return Errorf(EINVALID, "oauth_info.redirect_uri must be an absolute https URL")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return Errorf(EINVALID, "oauth_info.redirect_uri must not have a fragment")
	case u.User != nil:
		return Errorf(EINVALID, "oauth_info.redirect_uri must not carry credentials")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return Errorf(EINVALID, "oauth_info.redirect_uri must be https (http only on a loopback host)")
	default:
		return Errorf(EINVALID, "oauth_info.redirect_uri scheme %q is not allowed: use https", u.Scheme)
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

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

	BasicPasswordHash string `json:"-"` // bcrypt
	// JWT verification material: an HMAC secret or a PEM public key.
	JWTSecret    string `json:"-"`
	JWTPublicKey string `json:"-"`
}

// Approval is what approving a key request hands out, once. RawKey and
// Password are never stored.
type Approval struct {
	RawKey   string
	Password string
	KeyHash  string
	// OAuthClient is set for oauth entries instead of RawKey.
	OAuthClient *OAuthClient
	PolicyID    string
}

// MarshalJSON answers in Tyk's shapes: {"RawKey","Password"} for keys, the
// client's id, secret, policy and redirect URI for OAuth.
func (a *Approval) MarshalJSON() ([]byte, error) {
	if a.OAuthClient != nil {
		return json.Marshal(map[string]string{
			"client_id": a.OAuthClient.ClientID, "secret": a.OAuthClient.Secret,
			"policy_id": a.PolicyID, "redirect_uri": a.OAuthClient.RedirectURI,
		})
	}
	return json.Marshal(map[string]string{"RawKey": a.RawKey, "Password": a.Password})
}

// KeyRequestFilter selects key requests.
type KeyRequestFilter struct {
	Approved      *bool  // nil: both
	ByUser        string // "": every developer's
	Offset, Limit int
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

// Change kinds in the change feed: the identity contract's, which every
// follower of the feed (sidecar, Tyk plugin) reads.
const (
	ChangeDeveloper     = identity.ChangeDeveloper     // a developer was created, updated, deactivated or deleted
	ChangeKeyAdded      = identity.ChangeKeyAdded      // a key now resolves
	ChangeKeyUpdated    = identity.ChangeKeyUpdated    // a key's policies changed
	ChangeKeyRevoked    = identity.ChangeKeyRevoked    // a key no longer resolves
	ChangeOAuthRemoved  = identity.ChangeOAuthRemoved  // an OAuth client was deleted, and its tokens with it
	ChangeTokenRevoked  = identity.ChangeTokenRevoked  // an OAuth access token was revoked
	ChangeTokensRevoked = identity.ChangeTokensRevoked // every access token of an OAuth client was revoked
)

// Change is one entry of the change feed: something that can alter how a
// key resolves. Seq increases with every change and is never reused. The
// type is the identity contract's, so that the store, the admin API, the
// sidecar and the plugin pass one shape.
type Change = identity.Change

// ChangeService reads the change feed.
type ChangeService interface {
	// ChangesSince returns up to limit changes with Seq > after, oldest
	// first, and whether changes after `after` were already pruned (the
	// reader must then drop everything it cached).
	ChangesSince(ctx context.Context, after int64, limit int) (changes []Change, gap bool, err error)
	// WaitForChanges is ChangesSince that waits up to wait for at least
	// one change to arrive.
	WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]Change, bool, error)
	// LastChange returns the newest sequence number (0 when none).
	LastChange(ctx context.Context) (int64, error)
	// PruneChanges forgets changes older than before (always keeping the
	// newest) and returns how many it removed. Readers whose position is
	// older than what was pruned are told of the gap.
	PruneChanges(ctx context.Context, before time.Time) (int64, error)
}

// JWTKeyMaterial sorts a key request's JWT material into an HMAC secret or
// a PEM public key (a PEM certificate yields its public key). EINVALID for
// PEM that does not parse or holds an unsupported key.
func JWTKeyMaterial(secret, certificate string) (hmacSecret, publicKeyPEM string, err error) {
	material := strings.TrimSpace(secret)
	if material == "" {
		material = strings.TrimSpace(certificate)
	}
	if material == "" {
		return "", "", Errorf(EINVALID, "A jwt key request needs jwt_secret (an HMAC secret or a PEM public key) or certificate")
	}
	if !strings.HasPrefix(material, "-----BEGIN") {
		// HS256 wants a key as long as its hash (RFC 7518 §3.2).
		if len(material) < MinHMACSecret {
			return "", "", Errorf(EINVALID, "An HMAC jwt_secret must be at least %d bytes", MinHMACSecret)
		}
		if strings.Count(material, material[:1]) == len(material) {
			return "", "", Errorf(EINVALID, "An HMAC jwt_secret must not be one byte repeated")
		}
		return material, "", nil
	}
	pub, err := ParsePublicKeyPEM(material)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", Errorf(EINVALID, "Unsupported public key")
	}
	return "", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// SealedPrefix starts every secret the store seals at rest. A client's
// secret may not start with it: it would pass for a sealed one.
const SealedPrefix = "keylens-sealed:v1:"

// LooksSealed reports whether s has the shape of a sealed secret.
func LooksSealed(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), SealedPrefix) }

// MinHMACSecret is the shortest HMAC secret a JWT key accepts.
const MinHMACSecret = 32

// ParsePublicKeyPEM reads an RSA, ECDSA or Ed25519 public key from a PEM
// "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" block.
func ParsePublicKeyPEM(s string) (any, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, Errorf(EINVALID, "The PEM in jwt_secret or certificate does not parse")
	}
	var pub any
	var err error
	switch block.Type {
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return nil, Errorf(EINVALID, "The PEM in jwt_secret or certificate does not parse")
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return pub, nil
	}
	return nil, Errorf(EINVALID, "Only RSA, ECDSA and Ed25519 public keys are supported")
}
