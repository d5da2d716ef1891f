package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/keylens/keylens/portalstore"
)

var (
	_ portalstore.AdminService   = (*DB)(nil)
	_ portalstore.SessionService = (*DB)(nil)
	_ portalstore.AuditService   = (*DB)(nil)
)

const adminColumns = `id, email, password_hash, disabled, date_created, last_login`

var errAdminNotFound = portalstore.Errorf(portalstore.ENOTFOUND, "Admin not found")

// CreateAdmin validates and stores a new admin.
func (db *DB) CreateAdmin(ctx context.Context, a *portalstore.Admin) error {
	if err := a.PrepareNew(db.Now()); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO admins (`+adminColumns+`, email_lower) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Email, a.PasswordHash, a.Disabled, formatTime(a.DateCreated), formatTime(a.LastLogin), strings.ToLower(a.Email))
		if isUniqueViolation(err) {
			return portalstore.Errorf(portalstore.ECONFLICT, "An admin with this email already exists")
		} else if err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, portalstore.AuditAdminCreated, portalstore.ObjectAdmin, a.ID, "", a.Email); err != nil {
			return err
		}
		return nil
	})
}

// FindAdmins returns every admin, by email.
func (db *DB) FindAdmins(ctx context.Context) ([]*portalstore.Admin, error) {
	return queryAdmins(ctx, db.rdb, `SELECT `+adminColumns+` FROM admins ORDER BY email_lower`)
}

// FindAdminByID returns the admin with id.
func (db *DB) FindAdminByID(ctx context.Context, id string) (*portalstore.Admin, error) {
	as, err := queryAdmins(ctx, db.rdb, `SELECT `+adminColumns+` FROM admins WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, errAdminNotFound
	}
	return as[0], nil
}

func queryAdmins(ctx context.Context, q querier, query string, args ...any) ([]*portalstore.Admin, error) {
	out := []*portalstore.Admin{}
	err := eachRow(ctx, q, query, args, func(rows *sql.Rows) error {
		var a portalstore.Admin
		var created, last string
		if err := rows.Scan(&a.ID, &a.Email, &a.PasswordHash, &a.Disabled, &created, &last); err != nil {
			return err
		}
		var err error
		if a.DateCreated, err = parseTime(created); err != nil {
			return err
		}
		if a.LastLogin, err = parseTime(last); err != nil {
			return err
		}
		out = append(out, &a)
		return nil
	})
	return out, err
}

// SetAdminDisabled disables or enables an admin; disabling ends their
// sessions.
func (db *DB) SetAdminDisabled(ctx context.Context, id string, disabled bool) error {
	return db.write(ctx, func(tx *Tx) error {
		var email string
		if err := tx.QueryRowContext(ctx, `SELECT email FROM admins WHERE id = ?`, id).Scan(&email); errors.Is(err, sql.ErrNoRows) {
			return errAdminNotFound
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE admins SET disabled = ? WHERE id = ?`, disabled, id); err != nil {
			return err
		}
		action := portalstore.AuditAdminEnabled
		if disabled {
			action = portalstore.AuditAdminDisabled
			if _, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE admin_id = ?`, id); err != nil {
				return err
			}
		}
		if err := recordAudit(ctx, tx, action, portalstore.ObjectAdmin, id, "", email); err != nil {
			return err
		}
		return nil
	})
}

// DeleteAdmin removes an admin; their sessions go with them (ON DELETE
// CASCADE).
func (db *DB) DeleteAdmin(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *Tx) error {
		var email string
		if err := tx.QueryRowContext(ctx, `SELECT email FROM admins WHERE id = ?`, id).Scan(&email); errors.Is(err, sql.ErrNoRows) {
			return errAdminNotFound
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE admin_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM admins WHERE id = ?`, id); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, portalstore.AuditAdminDeleted, portalstore.ObjectAdmin, id, "", email); err != nil {
			return err
		}
		return nil
	})
}

// VerifyAdmin checks an admin's email and password.
func (db *DB) VerifyAdmin(ctx context.Context, email, password string) (*portalstore.Admin, error) {
	unauthorized := portalstore.Errorf(portalstore.EUNAUTHORIZED, "Invalid email or password")
	as, err := queryAdmins(ctx, db.rdb, `SELECT `+adminColumns+` FROM admins WHERE email_lower = ?`, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		portalstore.CheckPassword("", password) // the same cost as a real check
		return nil, unauthorized
	}
	a := as[0]
	if !portalstore.CheckPassword(a.PasswordHash, password) || a.Disabled {
		return nil, unauthorized
	}
	if a.LastLogin, a.PasswordHash, err = db.signedIn(ctx, "admins", "last_login", a.ID, a.PasswordHash, password); err != nil {
		return nil, err
	}
	return a, nil
}

// ---- sessions ----

// CreateSession stores a new session.
func (db *DB) CreateSession(ctx context.Context, s *portalstore.Session) error {
	var admin any // NULL for the admin key
	if s.AdminID != "" {
		admin = s.AdminID
	}
	_, err := db.wdb.ExecContext(ctx, `INSERT INTO admin_sessions (id_hash, admin_id, admin_key, created_at, last_seen) VALUES (?, ?, ?, ?, ?)`,
		s.IDHash, admin, s.AdminKey, s.Created.Unix(), s.LastSeen.Unix())
	if isUniqueViolation(err) {
		return portalstore.Errorf(portalstore.ECONFLICT, "Session exists")
	}
	return err
}

// FindSession returns a live admin's (or the admin key's) session.
func (db *DB) FindSession(ctx context.Context, idHash string) (*portalstore.Session, error) {
	var s portalstore.Session
	var admin, email sql.NullString
	var disabled sql.NullBool
	var created, seen int64
	err := db.rdb.QueryRowContext(ctx, `SELECT s.id_hash, s.admin_id, s.admin_key, s.created_at, s.last_seen, a.email, a.disabled
		FROM admin_sessions s LEFT JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = ?`, idHash).
		Scan(&s.IDHash, &admin, &s.AdminKey, &created, &seen, &email, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errSessionNotFound
	} else if err != nil {
		return nil, err
	}
	if admin.Valid && (!email.Valid || disabled.Bool) {
		return nil, errSessionNotFound
	}
	s.AdminID, s.Email = admin.String, email.String
	s.Created, s.LastSeen = time.Unix(created, 0), time.Unix(seen, 0)
	return &s, nil
}

var errSessionNotFound = portalstore.Errorf(portalstore.ENOTFOUND, "Session not found")

// TouchSession records a request.
func (db *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := db.wdb.ExecContext(ctx, `UPDATE admin_sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?`, at.Unix(), idHash, at.Unix())
	return err
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	_, err := db.wdb.ExecContext(ctx, `DELETE FROM admin_sessions WHERE id_hash = ?`, idHash)
	return err
}

// DeleteExpiredSessions removes sessions idle or old beyond the limits.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.wdb.ExecContext(ctx, `DELETE FROM admin_sessions WHERE last_seen <= ? OR created_at <= ?`,
		now.Add(-portalstore.SessionIdleTimeout).Unix(), now.Add(-portalstore.SessionMaxAge).Unix())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ---- audit ----

// recordAudit records a change inside the transaction that makes it, with
// the actor the context carries.
func recordAudit(ctx context.Context, tx *Tx, action, objectType, objectID, developerID, detail string) error {
	e := portalstore.NewAuditEntry(ctx, tx.now, action, objectType, objectID, developerID, detail)
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, actor_id, via, action, object_type, object_id, developer_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Time.Format(changeTimeLayout), e.Actor, e.ActorID, e.Via, e.Action,
		e.ObjectType, e.ObjectID, e.DeveloperID, e.Detail)
	return err
}

// FindAudit returns a page of the audit trail, newest first.
func (db *DB) FindAudit(ctx context.Context, f portalstore.AuditFilter) ([]portalstore.AuditEntry, int, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	where, args := "1 = 1", []any{}
	if f.DeveloperID != "" {
		where, args = "a.developer_id = ?", append(args, f.DeveloperID)
	}
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log a WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	query := `SELECT a.seq, a.at, a.actor, a.actor_id, a.via, a.action, a.object_type, a.object_id, a.developer_id, a.detail,
		COALESCE(d.email, '') FROM audit_log a LEFT JOIN developers d ON d.id = a.developer_id AND a.developer_id <> ''
		WHERE ` + where + ` ORDER BY a.seq DESC`
	if f.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, max(f.Offset, 0))
	}
	out := []portalstore.AuditEntry{}
	err = eachRow(ctx, tx, query, args, func(rows *sql.Rows) error {
		var e portalstore.AuditEntry
		var at string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.ActorID, &e.Via, &e.Action, &e.ObjectType, &e.ObjectID, &e.DeveloperID, &e.Detail,
			&e.DeveloperEmail); err != nil {
			return err
		}
		t, err := time.Parse(changeTimeLayout, at)
		if err != nil {
			return err
		}
		e.Time = t
		out = append(out, e)
		return nil
	})
	return out, total, err
}
