package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/keylens/keylens"
)

var _ keylens.AccountService = (*DB)(nil)

// ChangePassword changes a developer's password in the portal.
func (db *DB) ChangePassword(ctx context.Context, devID, current, next, keep string) error {
	d, err := findDeveloper(ctx, db.rdb, `id = ?`, devID)
	if err != nil {
		return err
	}
	if !keylens.CheckPassword(d.PasswordHash, current) {
		return keylens.Errorf(keylens.EUNAUTHORIZED, "Your current password is not right")
	}
	hash, err := newPasswordHash(d, next)
	if err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		if err := writePassword(ctx, tx, d, hash, keylens.AuditDeveloperPassword); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE developer_id = ? AND id_hash <> ?`, devID, keep)
		return err
	})
}

// newPasswordHash hashes a developer's new, typed password (bcrypt, before
// any transaction), refusing one of their recent ones.
func newPasswordHash(d *keylens.Developer, pw string) (string, error) {
	if err := keylens.ValidateTypedPassword(pw); err != nil {
		return "", err
	}
	if err := keylens.CheckPasswordReuse(d.PasswordHash, d.PasswordHistory, pw); err != nil {
		return "", err
	}
	return keylens.HashPassword(pw)
}

// writePassword stores hash as d's password, if the stored one is still
// the one d was read with (else ECONFLICT: it changed meanwhile), and adds
// it to the history.
func writePassword(ctx context.Context, tx *Tx, d *keylens.Developer, hash, action string) error {
	history, err := json.Marshal(keylens.AppendPasswordHistory(d.PasswordHistory, hash))
	if err != nil {
		return err
	}
	if err := execOne(ctx, tx, keylens.Errorf(keylens.ECONFLICT, "The password changed meanwhile: try again"),
		`UPDATE developers SET password_hash = ?, password_updated = ?, password_history = ? WHERE id = ? AND password_hash = ?`,
		hash, formatTime(tx.now), string(history), d.ID, d.PasswordHash); err != nil {
		return err
	}
	return recordAudit(ctx, tx, action, keylens.ObjectDeveloper, d.ID, d.ID, d.Email)
}

// CreatePasswordReset makes a reset token for an active developer.
func (db *DB) CreatePasswordReset(ctx context.Context, email string) (string, *keylens.Developer, error) {
	d, err := db.FindDeveloperByEmail(ctx, strings.TrimSpace(email))
	if err != nil {
		return "", nil, err
	}
	if d.Inactive {
		return "", nil, errDeveloperNotFound
	}
	token, hash := keylens.NewSessionID() // 256 random bits; only the SHA-256 is stored
	err = db.write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM password_resets WHERE expires_at <= ?`, tx.now.Unix()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO password_resets (token_hash, developer_id, expires_at) VALUES (?, ?, ?)`,
			hash, d.ID, tx.now.Add(keylens.PasswordResetTTL).Unix())
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return token, d, nil
}

var errResetNotFound = keylens.Errorf(keylens.ENOTFOUND, "This password reset link is not valid: it was used, it expired, or it was never sent")

// resetOwner returns the developer a live token resets.
func (db *DB) resetOwner(ctx context.Context, q querier, token string) (string, error) {
	if token == "" {
		return "", errResetNotFound
	}
	var devID string
	err := q.QueryRowContext(ctx, `SELECT developer_id FROM password_resets WHERE token_hash = ? AND expires_at > ?`,
		keylens.SessionHash(token), db.Now().Unix()).Scan(&devID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errResetNotFound
	}
	return devID, err
}

// CheckPasswordReset reports whether token is live.
func (db *DB) CheckPasswordReset(ctx context.Context, token string) error {
	_, err := db.resetOwner(ctx, db.rdb, token)
	return err
}

// ResetPassword spends a reset token on a new password.
func (db *DB) ResetPassword(ctx context.Context, token, password string) (*keylens.Developer, error) {
	devID, err := db.resetOwner(ctx, db.rdb, token)
	if err != nil {
		return nil, err
	}
	d, err := findDeveloper(ctx, db.rdb, `id = ?`, devID)
	if err != nil {
		return nil, err
	}
	hash, err := newPasswordHash(d, password)
	if err != nil {
		return nil, err
	}
	err = db.write(ctx, func(tx *Tx) error {
		// Spent here, in the transaction that uses it: a token works once.
		if err := execOne(ctx, tx, errResetNotFound, `DELETE FROM password_resets WHERE token_hash = ? AND expires_at > ?`,
			keylens.SessionHash(token), tx.now.Unix()); err != nil {
			return err
		}
		if err := writePassword(ctx, tx, d, hash, keylens.AuditPasswordReset); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM password_resets WHERE developer_id = ?`, devID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE developer_id = ?`, devID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// fileReveal notes, as r is filed, that what approving it issues is to be
// kept for its developer (r.ShowOnce).
func fileReveal(ctx context.Context, tx *Tx, r *keylens.KeyRequest) error {
	if !r.ShowOnce {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO reveals (request_id, developer_id) VALUES (?, ?)`, r.ID, r.ByUser)
	return err
}

// keepReveal keeps, sealed, what approving r issued, when r was filed to
// be shown once to its developer; nothing otherwise.
func keepReveal(ctx context.Context, tx *Tx, r *keylens.KeyRequest, a *keylens.Approval) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM reveals WHERE request_id = ?`, r.ID).Scan(&n); err != nil || n == 0 {
		return err
	}
	authType := keylens.AuthOAuth
	if a.OAuthClient == nil {
		cat, err := loadCatalogue(ctx, tx)
		if err != nil {
			return err
		}
		authType = keylens.AuthToken
		if e := cat.Entry(firstPolicy(r)); e != nil {
			authType = e.AuthType
		}
	}
	b, err := json.Marshal(keylens.NewReveal(r, authType, a, tx.now))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE reveals SET secret = ? WHERE request_id = ?`, tx.db.seal(string(b)), r.ID)
	return err
}

// TakeReveals returns and forgets what a developer has yet to see.
func (db *DB) TakeReveals(ctx context.Context, devID string) ([]*keylens.Reveal, error) {
	// Most visits find none: a read says so without taking the write lock.
	var n int
	if err := db.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM reveals WHERE developer_id = ? AND secret <> ''`, devID).Scan(&n); err != nil || n == 0 {
		return nil, err
	}
	var out []*keylens.Reveal
	err := db.write(ctx, func(tx *Tx) error {
		out = nil
		var sealed []string
		if err := eachRow(ctx, tx, `SELECT secret FROM reveals WHERE developer_id = ? AND secret <> '' ORDER BY request_id`,
			[]any{devID}, func(rows *sql.Rows) error {
				var s string
				err := rows.Scan(&s)
				sealed = append(sealed, s)
				return err
			}); err != nil {
			return err
		}
		for _, s := range sealed {
			plain, err := db.unseal(s)
			if err != nil {
				return err
			}
			var rv keylens.Reveal
			if err := json.Unmarshal([]byte(plain), &rv); err != nil {
				return fmt.Errorf("a kept approval does not decode: %w", err)
			}
			out = append(out, &rv)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM reveals WHERE developer_id = ? AND secret <> ''`, devID)
		return err
	})
	return out, err
}
