package keylens

import (
	"strings"
	"time"
)

// DefaultMaxRotationGrace is the longest grace period a rotation may give
// the key it replaces, unless configured otherwise (--max-rotation-grace).
const DefaultMaxRotationGrace = 720 * time.Hour

// KeyRotation is what replacing a key takes besides the key itself.
type KeyRotation struct {
	// Grace is how long the replaced key keeps resolving: 0 stops it at
	// once.
	Grace time.Duration
	// JWTSecret and Certificate are the new key's verification material
	// when it is a jwt key (as a key request carries it); the replaced
	// key keeps its own until its grace ends.
	JWTSecret, Certificate string
}

// Rotation is what rotating a key hands out, once: the new raw key (and
// password for a basic key) and which key it replaces until when.
type Rotation struct {
	RawKey        string    `json:"RawKey"`
	Password      string    `json:"Password,omitempty"`
	KeyHash       string    `json:"key_id"`
	Replaces      string    `json:"replaces"`
	OldKeyExpires time.Time `json:"old_key_expires"`
}

// ParseGrace reads a grace period as a client writes it, a Go duration
// ("0s", "90m", "24h"); anything else is EINVALID. Its bounds are
// CheckGrace's, which the store applies.
func ParseGrace(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, Errorf(EINVALID, "grace_period is required: a duration such as \"0s\", \"1h\" or \"72h\"")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, Errorf(EINVALID, "grace_period %.40q is not a duration such as \"0s\", \"1h\" or \"72h\"", s)
	}
	return d, nil
}

// CheckGrace requires 0 <= grace <= max.
func CheckGrace(grace, max time.Duration) error {
	if grace < 0 {
		return Errorf(EINVALID, "grace_period cannot be negative")
	}
	if grace > max {
		return Errorf(EINVALID, "grace_period %s is longer than the %s this portal allows", grace, max)
	}
	return nil
}

// GraceEnd is when a key replaced at now with grace stops resolving: at
// once (now) for no grace, else now+grace rounded up to the whole second,
// so that every cache, which counts expiry in whole seconds, stops it at
// the very instant the store does, and never before.
func GraceEnd(now time.Time, grace time.Duration) time.Time {
	if grace <= 0 {
		return now
	}
	end := now.Add(grace)
	if t := end.Truncate(time.Second); !t.Equal(end) {
		end = t.Add(time.Second)
	}
	return end
}

// Expired reports whether k has stopped resolving at now: its grace ended.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// ExpiresUnix is k's end in Unix seconds, 0 for none: the form of every
// credential cache's expiry.
func (k *Key) ExpiresUnix() int64 {
	if k.ExpiresAt.IsZero() {
		return 0
	}
	return k.ExpiresAt.Unix()
}

// Rotate mints the key that replaces old, owned by the same developer,
// with the same kind, policies, key request and key-request fields: an
// approval of old's request as it stands (Issue), so that a new key is
// made one way only. kind is old's auth type, or for a key imported with
// its developer (which has none) the catalogue's auth type of its first
// policy. OAuth clients are not keys: their secret rotates instead.
func (is Issuer) Rotate(old *Key, kind string, r KeyRotation, basic *BasicSecret) (*Issued, error) {
	if old.AuthType != "" {
		kind = old.AuthType
	}
	switch kind {
	case AuthToken, AuthBasic, AuthJWT:
	default:
		return nil, Errorf(EINVALID, "Key %s is of no kind keylens can issue again (its first policy is not in the catalogue)", old.Hash)
	}
	if len(old.Policies) == 0 {
		return nil, Errorf(EINVALID, "Key %s has no policy: a new key would grant nothing", old.Hash)
	}
	req := &KeyRequest{ID: old.RequestID, ByUser: old.DeveloperID, ApplyPolicies: old.Policies, Fields: old.Fields,
		JWTSecret: r.JWTSecret, Certificate: r.Certificate}
	return is.Issue(req, &CatalogueEntry{PolicyID: old.Policies[0], AuthType: kind}, basic)
}
