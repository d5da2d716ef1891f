package sqlstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/keylens/keylens"
)

// Secrets at rest. Without a secrets key, JWT HMAC secrets and OAuth client
// secrets are stored as Tyk stores them: in the clear (they must be
// recovered to verify a token or be shown to their developer, so they
// cannot be hashed). With one (UseSecretsKey), they are sealed with
// AES-256-GCM under it and opened on use; a sealed value names the key it
// was sealed with, so that the wrong key is an error, never garbage.

// sealedPrefix starts every sealed value: "keylens-sealed:v1:<key id>:<base64 nonce+ciphertext>".
const sealedPrefix = keylens.SealedPrefix

// secretBox seals and opens secrets under one key.
type secretBox struct {
	aead cipher.AEAD
	id   string // the first 8 bytes of the key's SHA-256, hex: names the key, reveals nothing
}

// ParseSecretsKey reads a secrets key: 32 bytes as 64 hex characters, as
// standard or URL-safe base64, or raw.
func ParseSecretsKey(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	if b, err := hex.DecodeString(t); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	if len(s) == 32 {
		return []byte(s), nil
	}
	return nil, errors.New("a secrets key is 32 bytes: 64 hex characters, base64, or 32 raw bytes (openssl rand -hex 32)")
}

func newSecretBox(key []byte) (*secretBox, error) {
	if len(key) != 32 {
		return nil, errors.New("a secrets key is 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key)
	return &secretBox{aead: aead, id: hex.EncodeToString(sum[:8])}, nil
}

// UseSecretsKey seals secrets written from now on with key and opens
// those sealed with it. Call it once, after Open and before any use.
func (db *DB) UseSecretsKey(key []byte) error {
	box, err := newSecretBox(key)
	if err != nil {
		return err
	}
	db.secrets = box
	return nil
}

// seal returns s sealed, or s itself without a key (or when empty). Every
// writer holds opened secrets, so nothing is sealed twice; a client's
// secret that merely looks sealed is refused by validation
// (keylens.LooksSealed).
func (db *DB) seal(s string) string {
	if db.secrets == nil || s == "" {
		return s
	}
	return db.secrets.seal(s)
}

// SealCleartext seals, under the current key, the secrets stored in the
// clear before a key was set, in one transaction, and reports how many.
func (db *DB) SealCleartext(ctx context.Context) (int, error) {
	if db.secrets == nil {
		return 0, nil
	}
	return db.rewriteSecrets(ctx, true, func(plain string) (string, error) { return db.secrets.seal(plain), nil })
}

func (b *secretBox) seal(s string) string {
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := b.aead.Seal(nonce, nonce, []byte(s), []byte(b.id))
	return sealedPrefix + b.id + ":" + base64.RawStdEncoding.EncodeToString(sealed)
}

// unseal returns the secret s holds: s itself when it is not sealed.
func (db *DB) unseal(s string) (string, error) {
	if !strings.HasPrefix(s, sealedPrefix) {
		return s, nil
	}
	id, data, ok := strings.Cut(s[len(sealedPrefix):], ":")
	switch {
	case !ok:
		return "", errors.New("a sealed secret is malformed")
	case db.secrets == nil:
		return "", fmt.Errorf("the store holds secrets sealed with key %s: start with that secrets key", id)
	case id != db.secrets.id:
		return "", fmt.Errorf("the store holds secrets sealed with key %s, not with this secrets key (%s)", id, db.secrets.id)
	}
	raw, err := base64.RawStdEncoding.DecodeString(data)
	n := db.secrets.aead.NonceSize()
	if err != nil || len(raw) < n {
		return "", errors.New("a sealed secret is malformed")
	}
	plain, err := db.secrets.aead.Open(nil, raw[:n], raw[n:], []byte(id))
	if err != nil {
		return "", errors.New("a sealed secret does not open: it was altered")
	}
	return string(plain), nil
}

// secretColumns are where secrets live: table, key column, secret column.
var secretColumns = []struct{ table, key, col string }{
	{"developer_keys", "key_hash", "jwt_secret"},
	{"key_requests", "id", "jwt_secret"},
	{"oauth_clients", "client_id", "secret"},
	{"oauth_previous_secrets", "client_id", "secret"}, // a rotated client's old secret, during its grace
	{"reveals", "request_id", "secret"},               // approvals a developer has yet to see (see keepReveal)
}

// CheckSecrets reports, before anything is served, a store whose sealed
// secrets this process cannot open: no secrets key, or another one.
func (db *DB) CheckSecrets(ctx context.Context) error {
	for _, c := range secretColumns {
		var s string
		err := db.rdb.QueryRowContext(ctx, `SELECT `+c.col+` FROM `+c.table+` WHERE `+c.col+` LIKE ? LIMIT 1`, sealedPrefix+"%").Scan(&s)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return err
		}
		if _, err := db.unseal(s); err != nil {
			return err
		}
	}
	return nil
}

// RotateSecrets re-seals every secret under newKey (nil: stores them in the
// clear again) in one transaction, opening each with the current key, and
// reports how many it rewrote. From then on the store needs newKey.
func (db *DB) RotateSecrets(ctx context.Context, newKey []byte) (int, error) {
	var next *secretBox
	if newKey != nil {
		var err error
		if next, err = newSecretBox(newKey); err != nil {
			return 0, err
		}
	}
	n, err := db.rewriteSecrets(ctx, false, func(stored string) (string, error) {
		plain, err := db.unseal(stored)
		if err != nil || next == nil {
			return plain, err
		}
		return next.seal(plain), nil
	})
	if err != nil {
		return 0, err
	}
	db.secrets = next
	return n, nil
}

// rewriteSecrets replaces every stored secret (only those in the clear,
// with onlyClear) by rewrite of it, in one transaction, and reports how
// many it rewrote.
func (db *DB) rewriteSecrets(ctx context.Context, onlyClear bool, rewrite func(string) (string, error)) (int, error) {
	n := 0
	err := db.write(ctx, func(tx *Tx) error {
		for _, c := range secretColumns {
			query, args := `SELECT `+c.key+`, `+c.col+` FROM `+c.table+` WHERE `+c.col+` <> ''`, []any(nil)
			if onlyClear {
				query, args = query+` AND `+c.col+` NOT LIKE ?`, []any{sealedPrefix + "%"}
			}
			type row struct{ key, secret string }
			var rows []row
			if err := eachRow(ctx, tx, query, args, func(r *sql.Rows) error {
				var x row
				err := r.Scan(&x.key, &x.secret)
				rows = append(rows, x)
				return err
			}); err != nil {
				return err
			}
			for _, r := range rows {
				out, err := rewrite(r.secret)
				if err != nil {
					return fmt.Errorf("%s %s: %w", c.table, r.key, err)
				}
				if _, err := tx.ExecContext(ctx, `UPDATE `+c.table+` SET `+c.col+` = ? WHERE `+c.key+` = ?`, out, r.key); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// openKey opens k's sealed material in place.
func (db *DB) openKey(k *keylens.Key) (err error) {
	k.JWTSecret, err = db.unseal(k.JWTSecret)
	return err
}
