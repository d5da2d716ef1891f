package keylens

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// BasicSecret is a Basic password and its bcrypt hash. Stores make it
// before their write transaction, so that bcrypt's cost is not paid while
// holding the write lock.
type BasicSecret struct{ Password, Hash string }

// NewBasicSecret makes a random 16-character password and its hash.
func NewBasicSecret() (*BasicSecret, error) {
	pw := RandomAlnum(16)
	h, err := HashPassword(pw)
	return &BasicSecret{pw, h}, err
}

// Issued is what approving a key request makes: the Approval handed out
// once, and either the Key to store or, for an OAuth entry, the client in
// Approval.OAuthClient (Key is then nil).
type Issued struct {
	Approval *Approval
	Key      *Key
}

// Provisioner creates what an approval issued in an API gateway before the
// approval commits, so that the gateway accepts the credential the moment
// the developer receives it. owner is the developer it is issued to. A
// refusal or an unreachable gateway is an EBADGATEWAY error carrying the
// gateway's reason, and nothing may then remain in the gateway; after a
// success, undo removes what was created (the store calls it when the
// approval does not commit after all).
type Provisioner interface {
	Provision(ctx context.Context, issued *Issued, owner CredentialOwner) (undo func(context.Context), err error)
}

// Issuer mints credentials for approved key requests in one org with one
// key hash algorithm. It decides everything an approval hands out; a store
// only persists the result.
type Issuer struct {
	OrgID         string
	HashAlgorithm string
	Now           time.Time
	// CentralJWT says that JWTs are verified centrally, against an
	// identity provider's keys: a jwt request without material of its
	// own may then be approved.
	CentralJWT bool
}

// ErrNoJWTMaterial refuses a jwt request without material when JWTs are
// not verified centrally.
var ErrNoJWTMaterial = Errorf(EINVALID, "A jwt key request needs jwt_secret (an HMAC secret or a PEM public key) or certificate; "+
	"to approve it without, verify JWTs centrally: start keylens with --jwt-jwks-url, --jwt-public-key or --jwt-hmac-secret")

// Issue mints what entry's auth type names for request r, whose first
// policy entry is (the caller looks it up in the catalogue):
//
//   - authToken: a Tyk key of the org, stored as its hash;
//   - basic: a random 10-character username with the password of basic
//     (made by NewBasicSecret when nil); the key is the gateway's key of that
//     username, so that Tyk and keylens agree on its hash;
//   - jwt: the verification material of r (an HMAC secret or a PEM public
//     key) and a generated key whose id JWTs name as their kid; without
//     material, and only when CentralJWT is on, a key with none, whose id
//     the identity provider names in the identity claim of the JWTs it
//     signs;
//   - oauth: an OAuth client with a random id and secret, sent to r's
//     redirect URI, which must be valid.
//
// r is not changed. The raw key and passwords exist only in the result.
func (is Issuer) Issue(r *KeyRequest, entry *CatalogueEntry, basic *BasicSecret) (*Issued, error) {
	if r.Approved {
		return nil, Errorf(ECONFLICT, "Key request %s is already approved", r.ID)
	}
	if entry == nil || len(r.ApplyPolicies) == 0 || entry.PolicyID != r.ApplyPolicies[0] {
		var policy string
		if len(r.ApplyPolicies) > 0 {
			policy = r.ApplyPolicies[0]
		}
		return nil, Errorf(EINVALID, "Policy %s is not in the catalogue", policy)
	}
	a := &Approval{PolicyID: entry.PolicyID}
	if entry.AuthType == AuthOAuth {
		if err := ValidateRedirectURI(r.OAuthInfo.RedirectURI); r.OAuthInfo.RedirectURI != "" && err != nil {
			return nil, err
		}
		a.OAuthClient = &OAuthClient{
			ClientID:       RandomHex(16),
			Secret:         NewClientSecret(),
			RedirectURI:    r.OAuthInfo.RedirectURI,
			AppDescription: fieldString(r.Fields, "oauth_app_description"),
			UseCase:        fieldString(r.Fields, "oauth_use_case"),
			DateCreated:    is.Now,
		}
		return &Issued{Approval: a}, nil
	}

	key := &Key{DeveloperID: r.ByUser, Policies: r.ApplyPolicies, AuthType: entry.AuthType,
		RequestID: r.ID, Fields: r.Fields, DateCreated: is.Now}
	switch entry.AuthType {
	case AuthBasic:
		if basic == nil {
			var err error
			if basic, err = NewBasicSecret(); err != nil {
				return nil, err
			}
		}
		a.RawKey, a.Password = RandomAlnum(10), basic.Password
		key.BasicUsername, key.BasicPasswordHash = a.RawKey, basic.Hash
		key.Hash = HashKey(KeyFor(is.OrgID, a.RawKey, is.HashAlgorithm))
	case AuthJWT:
		secret, pub, err := ParseJWTMaterialOrCentral(r.JWTSecret, r.Certificate, is.CentralJWT)
		if err != nil {
			return nil, err
		}
		key.JWTSecret, key.JWTPublicKey = secret, pub
		a.RawKey = GenerateKey(is.OrgID, is.HashAlgorithm) // the kid JWTs name, or the identity claim
		key.Hash = HashKey(a.RawKey)
	default: // authToken
		a.RawKey = GenerateKey(is.OrgID, is.HashAlgorithm)
		key.Hash = HashKey(a.RawKey)
	}
	a.KeyHash = key.Hash
	return &Issued{Approval: a, Key: key}, nil
}

// ParseJWTMaterialOrCentral is the rule for a jwt request's verification
// material: a request may bring none only when JWTs are verified centrally
// (central), and then the key has none of its own (ErrNoJWTMaterial
// otherwise); material it brings is parsed by ParseJWTMaterial.
func ParseJWTMaterialOrCentral(secret, certificate string, central bool) (hmacSecret, publicKeyPEM string, err error) {
	if strings.TrimSpace(secret) == "" && strings.TrimSpace(certificate) == "" {
		if !central {
			return "", "", ErrNoJWTMaterial
		}
		return "", "", nil
	}
	return ParseJWTMaterial(secret, certificate)
}

func fieldString(fields map[string]any, name string) string {
	if s, ok := fields[name].(string); ok {
		return s
	}
	return ""
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// RandomAlnum returns n characters drawn uniformly from [A-Za-z0-9].
func RandomAlnum(n int) string {
	b := make([]byte, 0, n)
	var buf [1]byte
	for len(b) < n {
		_, _ = rand.Read(buf[:])              // never fails (crypto/rand documents this since Go 1.24)
		if int(buf[0]) < 256-256%len(alnum) { // reject to stay uniform
			b = append(b, alnum[int(buf[0])%len(alnum)])
		}
	}
	return string(b)
}

// RandomHex returns nBytes random bytes in hex.
func RandomHex(nBytes int) string {
	b := make([]byte, nBytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RandomUUID returns a random (version 4) UUID string, the form Tyk's OAuth
// client secrets are the base64 of.
func RandomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
