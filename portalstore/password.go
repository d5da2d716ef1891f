package portalstore

import (
	"errors"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// MinPasswordLength is the shortest plain-text password accepted.
const MinPasswordLength = 6

// PasswordHistoryLength is how many password hashes a developer's history
// keeps, newest last.
const PasswordHistoryLength = 10

// HashPassword returns the bcrypt hash to store for pw. A pw that is already
// a bcrypt hash (as Tyk's own payloads carry) is returned unchanged; a plain
// one must be MinPasswordLength to 72 bytes (bcrypt's limit), else EINVALID.
func HashPassword(pw string) (string, error) {
	if _, err := bcrypt.Cost([]byte(pw)); err == nil {
		return pw, nil
	}
	if len(pw) < MinPasswordLength {
		return "", Errorf(EINVALID, "Password must be at least %d characters", MinPasswordLength)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return "", Errorf(EINVALID, "Password must be at most 72 bytes")
	} else if err != nil {
		return "", err
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash. With an empty hash it still
// spends the time of one bcrypt comparison, so that an unknown account
// cannot be told from a wrong password by timing.
func CheckPassword(hash, pw string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("keylens-timing-equaliser"), bcrypt.DefaultCost)
	return h
})

// AppendPasswordHistory returns history with hash added, trimmed to the
// newest PasswordHistoryLength entries.
func AppendPasswordHistory(history []string, hash string) []string {
	history = append(history, hash)
	if n := len(history); n > PasswordHistoryLength {
		history = append([]string(nil), history[n-PasswordHistoryLength:]...)
	}
	return history
}
