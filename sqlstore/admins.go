package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

var (
	_ keylens.AdminService   = (*DB)(nil)
	_ keylens.SessionService = (*DB)(nil)
	_ keylens.AuditService   = (*DB)(nil)
)

const adminColumns = `id, email, password_hash, disabled, date_created, last_login`

var errAdminNotFound = keylens.Errorf(keylens.ENOTFOUND, "Admin not found")

// CreateAdmin validates and stores a new admin.
func (db *DB) CreateAdmin(ctx context.Context, a *keylens.Admin) error {
	if err := a.PrepareNew(db.Now()); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO admins (`+adminColumns+`, email_lower) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Email, a.PasswordHash, a.Disabled, formatTime(a.DateCreated), formatTime(a.LastLogin), strings.ToLower(a.Email))
		if isUniqueViolation(err) {
			return keylens.Errorf(keylens.ECONFLICT, "An admin with this email already exists")
		} else if err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditAdminCreated, keylens.ObjectAdmin, a.ID, "", a.Email); err != nil {
			return err
		}
		return nil
	})
}

// FindAdmins returns every admin, by email.
func (db *DB) FindAdmins(ctx context.Context) ([]*keylens.Admin, error) {
	return queryAdmins(ctx, db.rdb, `SELECT `+adminColumns+` FROM admins ORDER BY email_lower`)
}

// FindAdminByID returns the admin with id.
func (db *DB) FindAdminByID(ctx context.Context, id string) (*keylens.Admin, error) {
	as, err := queryAdmins(ctx, db.rdb, `SELECT `+adminColumns+` FROM admins WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, errAdminNotFound
	}
	return as[0], nil
}

func queryAdmins(ctx context.Context, q querier, query string, args ...any) ([]*keylens.Admin, error) {
	out := []*keylens.Admin{}
	err := eachRow(ctx, q, query, args, func(rows *sql.Rows) error {
		var a keylens.Admin
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
		action := keylens.AuditAdminEnabled
		if disabled {
			action = keylens.AuditAdminDisabled
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE admin_id = ?`, id); err != nil {
				return err
			}
		}
		if err := recordAudit(ctx, tx, action, keylens.ObjectAdmin, id, "", email); err != nil {
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
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE admin_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM admins WHERE id = ?`, id); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditAdminDeleted, keylens.ObjectAdmin, id, "", email); err != nil {
			return err
		}
		return nil
	})
}

// VerifyAdmin checks an admin's email and password.
func (db *DB) VerifyAdmin(ctx context.Context, email, password string) (*keylens.Admin, error) {
	unauthorized := keylens.Errorf(keylens.EUNAUTHORIZED, "Invalid email or password")
	as, err := queryAdmins(ctx, db.rdb, `SELECT `+adminColumns+` FROM admins WHERE email_lower = ?`, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		keylens.CheckPassword("", password) // the same cost as a real check
		return nil, unauthorized
	}
	a := as[0]
	if !keylens.CheckPassword(a.PasswordHash, password) || a.Disabled {
		return nil, unauthorized
	}
	if a.LastLogin, a.PasswordHash, err = db.signedIn(ctx, "admins", "last_login", a.ID, a.PasswordHash, password); err != nil {
		return nil, err
	}
	return a, nil
}

// ---- audit ----

// recordAudit records a change inside the transaction that makes it, with
// the actor the context carries.
func recordAudit(ctx context.Context, tx *Tx, action, objectType, objectID, developerID, detail string) error {
	e := keylens.NewAuditEntry(ctx, tx.now, action, objectType, objectID, developerID, detail)
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, actor_id, via, action, object_type, object_id, developer_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Time.Format(changeTimeLayout), e.Actor, e.ActorID, e.Via, e.Action,
		e.ObjectType, e.ObjectID, e.DeveloperID, e.Detail)
	return err
}

// FindAudit returns a page of the audit trail, newest first.
func (db *DB) FindAudit(ctx context.Context, f keylens.AuditFilter) ([]keylens.AuditEntry, int, error) {
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
	out := []keylens.AuditEntry{}
	err = eachRow(ctx, tx, query, args, func(rows *sql.Rows) error {
		var e keylens.AuditEntry
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
