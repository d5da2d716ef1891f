package keylens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// Admin is an account that signs in to the admin console. The admin key
// signs in too, without an account.
type Admin struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	Disabled    bool      `json:"disabled"`
	DateCreated time.Time `json:"date_created"`
	LastLogin   time.Time `json:"last_login"`

	// Password is write-only input (plain text); PasswordHash the stored
	// bcrypt hash. Neither is ever marshalled.
	Password     string `json:"-"`
	PasswordHash string `json:"-"`
}

// MinAdminPasswordLength is the shortest admin password accepted: an admin
// can do everything, so the developers' minimum is too little.
const MinAdminPasswordLength = 12

// PrepareNew validates a new admin and replaces the plain password by its
// bcrypt hash (HashPassword, at BcryptCost). bcrypt takes tens of
// milliseconds: call it before any transaction.
func (a *Admin) PrepareNew(now time.Time) error {
	if a.ID != "" && !IsObjectID(a.ID) {
		return Errorf(EINVALID, "Admin id must be 24 lowercase hex characters")
	}
	if err := ValidateEmail(a.Email); err != nil {
		return err
	}
	if err := ValidateAdminPassword(a.Password); err != nil {
		return err
	}
	h, err := HashPassword(a.Password)
	if err != nil {
		return err
	}
	a.Password, a.PasswordHash = "", h
	if a.ID == "" {
		a.ID = NewObjectID(now)
	}
	if a.DateCreated.IsZero() {
		a.DateCreated = now
	}
	return nil
}

// ValidateAdminPassword accepts a plain password of MinAdminPasswordLength
// to 72 bytes (bcrypt's limit). A bcrypt hash is not a password here: an
// admin's password is always typed.
func ValidateAdminPassword(pw string) error {
	if len(pw) < MinAdminPasswordLength {
		return Errorf(EINVALID, "An admin password must be at least %d characters", MinAdminPasswordLength)
	}
	if len(pw) > 72 {
		return Errorf(EINVALID, "Password must be at most 72 bytes")
	}
	return nil
}

// AdminService keeps the console's admin accounts.
type AdminService interface {
	// CreateAdmin validates and stores a (see Admin.PrepareNew). EINVALID
	// for a rule broken, ECONFLICT for a taken email (ignoring case).
	CreateAdmin(ctx context.Context, a *Admin) error
	// FindAdmins returns every admin, by email.
	FindAdmins(ctx context.Context) ([]*Admin, error)
	// FindAdminByID returns ENOTFOUND if no admin has id.
	FindAdminByID(ctx context.Context, id string) (*Admin, error)
	// SetAdminDisabled disables or enables an admin; disabling ends
	// every session of theirs at once. ENOTFOUND.
	SetAdminDisabled(ctx context.Context, id string, disabled bool) error
	// DeleteAdmin removes an admin and their sessions. ENOTFOUND.
	DeleteAdmin(ctx context.Context, id string) error
	// VerifyAdmin checks an email and password and records the sign-in.
	// EUNAUTHORIZED for an unknown email, a wrong password or a disabled
	// account: the caller cannot tell which (an unknown email costs one
	// bcrypt comparison too).
	VerifyAdmin(ctx context.Context, email, password string) (*Admin, error)
}

// Session lifetimes (console and developer portal): a session ends after SessionIdleTimeout
// without a request, and SessionMaxAge after sign-in whatever happens.
const (
	SessionIdleTimeout = 30 * time.Minute
	SessionMaxAge      = 12 * time.Hour
	// SessionTouchInterval is how stale a session's last-seen time may
	// get before a request records a new one: a write per page view
	// would queue behind every other writer for nothing.
	SessionTouchInterval = time.Minute
)

// Session is a signed-in session of the admin console or of the developer
// portal: one kind of record for both, told apart by who it belongs to.
// Only the SHA-256 of its id is stored; the id itself lives in the
// browser's cookie.
type Session struct {
	IDHash string // hex SHA-256 of the session id
	// DeveloperID is the signed-in developer of a portal session; "" for
	// a console session. A session is one or the other, never both.
	DeveloperID string
	// AdminID is the signed-in admin; "" for a session of the admin key
	// (or of a developer).
	AdminID string
	// AdminKey, for a session of the admin key, fingerprints the key it
	// signed in with (AdminKeyFingerprint): once keylens runs with
	// another key, the session no longer counts.
	AdminKey string
	Created  time.Time
	LastSeen time.Time

	// Email is the admin's or developer's, filled on reads; "" for the
	// admin key.
	Email string
}

// IsDeveloper reports whether s is a developer portal session.
func (s *Session) IsDeveloper() bool { return s.DeveloperID != "" }

// NewSessionID returns a new random 256-bit session id (base64url, for the
// cookie) and the hash to store.
func NewSessionID() (id, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents this since Go 1.24)
	id = base64.RawURLEncoding.EncodeToString(b[:])
	return id, SessionHash(id)
}

// SessionHash is the stored form of a session id: hex SHA-256.
func SessionHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// AdminKeyFingerprint names an admin key in a session without storing
// anything that helps to guess it: a digest of the key's SHA-256 (which is
// itself all the store keeps of the key).
func AdminKeyFingerprint(adminKeyHash [sha256.Size]byte) string {
	sum := sha256.Sum256(append([]byte("keylens-console-admin-key:"), adminKeyHash[:]...))
	return hex.EncodeToString(sum[:8])
}

// Expired reports whether the session has ended at now: idle for
// SessionIdleTimeout, or older than SessionMaxAge.
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.LastSeen.Add(SessionIdleTimeout)) || !now.Before(s.Created.Add(SessionMaxAge))
}

// NeedsTouch reports whether a request at now should record itself as
// the session's last sign of life.
func (s *Session) NeedsTouch(now time.Time) bool {
	return now.Sub(s.LastSeen) >= SessionTouchInterval
}

// Actor is who a session acts as, for the audit trail.
func (s *Session) Actor(via string) Actor {
	if s.DeveloperID != "" {
		return Actor{ID: s.DeveloperID, Name: s.Email, Via: via}
	}
	if s.AdminID == "" {
		return Actor{Name: ActorAdminKey, Via: via}
	}
	return Actor{ID: s.AdminID, Name: s.Email, Via: via}
}

// SessionService keeps console and developer portal sessions.
type SessionService interface {
	// CreateSession stores s, whose IDHash, Created and LastSeen the
	// caller sets.
	CreateSession(ctx context.Context, s *Session) error
	// FindSession returns the session with idHash and its admin's (or
	// developer's) email; ENOTFOUND if none, or if its admin is disabled
	// or gone, or its developer inactive or gone. Expiry is the caller's
	// to check (Session.Expired).
	FindSession(ctx context.Context, idHash string) (*Session, error)
	// TouchSession records a request at `at`.
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	// DeleteSession ends a session (sign-out); no error if it is gone.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteExpiredSessions removes the sessions expired at now and
	// returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
	// DeleteDeveloperSessions ends every session of developer devID but
	// the one whose IDHash is except ("" ends them all).
	DeleteDeveloperSessions(ctx context.Context, devID, except string) error
}
