package keylens

import (
	"errors"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// DefaultBcryptCost is the bcrypt cost of stored passwords unless
// SetBcryptCost says otherwise.
const DefaultBcryptCost = 10

var bcryptCost atomic.Int64

func init() { bcryptCost.Store(DefaultBcryptCost) }

// SetBcryptCost sets the cost of the password hashes made from now on (a
// process setting, from --bcrypt-cost), and of the dummy comparison that
// an unknown account costs. EINVALID outside bcrypt's range.
func SetBcryptCost(cost int) error {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return Errorf(EINVALID, "bcrypt cost must be %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	bcryptCost.Store(int64(cost))
	return nil
}

// BcryptCost is the cost hashes are made with.
func BcryptCost() int { return int(bcryptCost.Load()) }

// NeedsRehash reports whether a stored hash was made at another cost than
// the configured one: a successful check then stores the password again
// at the configured cost, so that checks of every account take the same
// time and old cheap hashes do not stay cheap to crack.
func NeedsRehash(hash string) bool {
	c, err := bcrypt.Cost([]byte(hash))
	return err == nil && c != BcryptCost()
}

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
	h, err := bcrypt.GenerateFromPassword([]byte(pw), BcryptCost())
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
		_ = bcrypt.CompareHashAndPassword(dummyHash(BcryptCost()), []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// dummyHash is a hash of the configured cost to compare against when
// there is no account, made once per cost.
func dummyHash(cost int) []byte {
	if h, ok := dummies.Load(cost); ok {
		return h.([]byte)
	}
	h, _ := bcrypt.GenerateFromPassword([]byte("keylens-timing-equaliser"), cost)
	dummies.Store(cost, h)
	return h
}

var dummies sync.Map // cost → hash

// AppendPasswordHistory returns history with hash added, trimmed to the
// newest PasswordHistoryLength entries.
func AppendPasswordHistory(history []string, hash string) []string {
	history = append(history, hash)
	if n := len(history); n > PasswordHistoryLength {
		history = append([]string(nil), history[n-PasswordHistoryLength:]...)
	}
	return history
}
