package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keylens/keylens"
)

var _ keylens.SessionService = (*DB)(nil)

// Sessions of the admin console and of the developer portal: one table,
// a row belongs to an admin (admin_id), the admin key (admin_key) or a
// developer (developer_id).

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s *keylens.Session) error {
	if s.DeveloperID != "" && (s.AdminID != "" || s.AdminKey != "") {
		return keylens.Errorf(keylens.EINVALID, "A session is an admin's or a developer's, not both")
	}
	_, err := db.wdb.ExecContext(ctx, `INSERT INTO sessions (id_hash, admin_id, admin_key, developer_id, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)`,
		s.IDHash, nullIfEmpty(s.AdminID), s.AdminKey, nullIfEmpty(s.DeveloperID), s.Created.Unix(), s.LastSeen.Unix())
	if isUniqueViolation(err) {
		return keylens.Errorf(keylens.ECONFLICT, "Session exists")
	}
	return err
}

// FindSession returns a live admin's (or the admin key's, or an active
// developer's) session.
func (db *DB) FindSession(ctx context.Context, idHash string) (*keylens.Session, error) {
	var s keylens.Session
	var admin, email, dev, devEmail sql.NullString
	var disabled, inactive sql.NullBool
	var created, seen int64
	err := db.rdb.QueryRowContext(ctx, `SELECT s.id_hash, s.admin_id, s.admin_key, s.developer_id, s.created_at, s.last_seen,
		a.email, a.disabled, d.email, d.inactive
		FROM sessions s LEFT JOIN admins a ON a.id = s.admin_id LEFT JOIN developers d ON d.id = s.developer_id
		WHERE s.id_hash = ?`, idHash).
		Scan(&s.IDHash, &admin, &s.AdminKey, &dev, &created, &seen, &email, &disabled, &devEmail, &inactive)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errSessionNotFound
	} else if err != nil {
		return nil, err
	}
	if admin.Valid && (!email.Valid || disabled.Bool) {
		return nil, errSessionNotFound
	}
	if dev.Valid && (!devEmail.Valid || inactive.Bool) {
		return nil, errSessionNotFound
	}
	s.AdminID, s.DeveloperID, s.Email = admin.String, dev.String, email.String
	if dev.Valid {
		s.Email = devEmail.String
	}
	s.Created, s.LastSeen = time.Unix(created, 0), time.Unix(seen, 0)
	return &s, nil
}

var errSessionNotFound = keylens.Errorf(keylens.ENOTFOUND, "Session not found")

// TouchSession records a request.
func (db *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := db.wdb.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?`, at.Unix(), idHash, at.Unix())
	return err
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	_, err := db.wdb.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	return err
}

// DeleteExpiredSessions removes sessions idle or old beyond the limits.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.wdb.ExecContext(ctx, `DELETE FROM sessions WHERE last_seen <= ? OR created_at <= ?`,
		now.Add(-keylens.SessionIdleTimeout).Unix(), now.Add(-keylens.SessionMaxAge).Unix())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteDeveloperSessions ends a developer's sessions but one.
func (db *DB) DeleteDeveloperSessions(ctx context.Context, devID, except string) error {
	_, err := db.wdb.ExecContext(ctx, `DELETE FROM sessions WHERE developer_id = ? AND id_hash <> ?`, devID, except)
	return err
}

// nullIfEmpty is NULL for "", for optional references.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
