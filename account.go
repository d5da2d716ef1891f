package keylens

import (
	"context"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// What a developer does for themselves in the developer portal, beyond
// DeveloperService: change their password, reset it by email, and see once
// the credentials an admin's approval issued them.

// PasswordResetTTL is how long a password reset link works.
const PasswordResetTTL = time.Hour

// Reveal is what an admin's approval issued to a developer for a request
// they filed in the portal, kept until they have seen it once.
type Reveal struct {
	RequestID string   `json:"request_id"`
	Policies  []string `json:"policies"`
	AuthType  string   `json:"auth_type"`
	// What the Approval handed out (Approval's own JSON is Tyk's answer
	// shape, which loses the key hash).
	RawKey      string       `json:"raw_key,omitempty"`
	Password    string       `json:"password,omitempty"`
	KeyHash     string       `json:"key_hash,omitempty"`
	OAuthClient *OAuthClient `json:"oauth_client,omitempty"`
	Approved    time.Time    `json:"approved"`
}

// NewReveal is what approving request r issued (a), to keep for r's
// developer.
func NewReveal(r *KeyRequest, authType string, a *Approval, at time.Time) *Reveal {
	return &Reveal{RequestID: r.ID, Policies: r.ApplyPolicies, AuthType: authType, RawKey: a.RawKey,
		Password: a.Password, KeyHash: a.KeyHash, OAuthClient: a.OAuthClient, Approved: at}
}

// AccountService is the developer portal's self-service.
type AccountService interface {
	// ChangePassword checks the developer's current password, refuses a
	// new one among their last PasswordHistoryLength (CheckPasswordReuse),
	// stores it and ends every other session of theirs (keep is the
	// IDHash of the session to keep). EUNAUTHORIZED for a wrong current
	// password, EINVALID for a refused new one, ENOTFOUND.
	ChangePassword(ctx context.Context, devID, current, next, keep string) error
	// CreatePasswordReset makes a single-use reset token for the active
	// developer with email (ignoring case), valid PasswordResetTTL; only
	// its SHA-256 is stored. ENOTFOUND when there is no such developer:
	// the caller must answer the same either way.
	CreatePasswordReset(ctx context.Context, email string) (token string, d *Developer, err error)
	// CheckPasswordReset reports whether token is a live reset token:
	// ENOTFOUND if it is unknown, used or expired.
	CheckPasswordReset(ctx context.Context, token string) error
	// ResetPassword spends token: it sets the developer's new password
	// (reuse refused, EINVALID, and the token is kept), ends every session
	// of theirs and returns them. ENOTFOUND as CheckPasswordReset.
	ResetPassword(ctx context.Context, token, password string) (*Developer, error)
	// TakeReveals returns and deletes what approvals issued to developer
	// devID that they have not seen yet, oldest first.
	TakeReveals(ctx context.Context, devID string) ([]*Reveal, error)
}

// CheckPasswordReuse refuses pw when it matches the current hash or one of
// the history's (newest last; Tyk's PWHistory). Each comparison is a bcrypt
// check: call it before any transaction.
func CheckPasswordReuse(current string, history []string, pw string) error {
	seen := map[string]bool{}
	for _, h := range append([]string{current}, history...) {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if CheckPassword(h, pw) {
			return Errorf(EINVALID, "Choose a password you have not used recently: the last %d are refused", PasswordHistoryLength)
		}
	}
	return nil
}

// ValidateTypedPassword accepts a password a person typed:
// MinPasswordLength to 72 bytes (bcrypt's limit). Unlike HashPassword's
// input, a bcrypt hash is not one.
func ValidateTypedPassword(pw string) error {
	if _, err := bcrypt.Cost([]byte(pw)); err == nil || len(pw) < MinPasswordLength {
		return Errorf(EINVALID, "Your password must be a minimum of %d characters", MinPasswordLength)
	}
	if len(pw) > 72 {
		return Errorf(EINVALID, "Password must be at most 72 bytes")
	}
	return nil
}
