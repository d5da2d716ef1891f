package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

// querier is what *sql.DB and *sql.Tx have in common for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	store() *DB // whose secrets key opens what is read
}

const developerColumns = `id, org_id, email, date_created, inactive, fields, nonce, sso_key,
	password_hash, password_history, password_max_days, password_updated, last_login_date`

// FindDeveloperByID returns the developer with id; ENOTFOUND if none.
func (db *DB) FindDeveloperByID(ctx context.Context, id string) (*keylens.Developer, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findDeveloper(ctx, tx, `id = ?`, id)
}

// FindDeveloperByEmail returns the developer with email, ignoring case.
func (db *DB) FindDeveloperByEmail(ctx context.Context, email string) (*keylens.Developer, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findDeveloper(ctx, tx, `email_lower = ?`, strings.ToLower(email))
}

// FindDevelopers returns a page of developers, ordered by id, and the total.
func (db *DB) FindDevelopers(ctx context.Context, f keylens.DeveloperFilter) ([]*keylens.Developer, int, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()

	where, args := "1 = 1", []any{}
	if f.EmailContains != "" {
		where = `email_lower LIKE ? ESCAPE '\'`
		args = append(args, "%"+escapeLike(strings.ToLower(f.EmailContains))+"%")
	}
	if f.EmailContains != "" && !db.pg {
		devs, total, ok, err := findFewDevelopers(ctx, tx, where, args, f)
		if ok || err != nil {
			return devs, total, err
		}
	}
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM developers WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	query := `SELECT ` + developerColumns + ` FROM developers WHERE ` + where + ` ORDER BY id`
	if f.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, max(f.Offset, 0))
	}
	devs, err := queryDevelopers(ctx, tx, query, args...)
	return devs, total, err
}

// findFewDevelopers answers an email search on SQLite when few developers
// match: one scan of the email index (emails and rowids only) finds them
// all, and only their rows are read and sorted. Walking the rows in id
// order instead would read every developer to find a handful, after a
// second scan to count them. ok is false when more than selectiveSearch
// match: walking the id order then finds a page sooner.
func findFewDevelopers(ctx context.Context, tx *Tx, where string, args []any, f keylens.DeveloperFilter) (devs []*keylens.Developer, total int, ok bool, err error) {
	var rowids []any
	scanArgs := append(append([]any{}, args...), selectiveSearch+1)
	if err := eachRow(ctx, tx, `SELECT rowid FROM developers WHERE `+where+` LIMIT ?`, scanArgs, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		rowids = append(rowids, id)
		return err
	}); err != nil {
		return nil, 0, false, err
	}
	if len(rowids) > selectiveSearch {
		return nil, 0, false, nil
	}
	if len(rowids) == 0 {
		return []*keylens.Developer{}, 0, true, nil
	}
	total = len(rowids)
	query := `SELECT ` + developerColumns + ` FROM developers WHERE rowid IN (` + placeholders(total) + `) ORDER BY id`
	if f.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		rowids = append(rowids, f.Limit, max(f.Offset, 0))
	}
	devs, err = queryDevelopers(ctx, tx, query, rowids...)
	return devs, total, true, err
}

// selectiveSearch is the most matches of an email search that SQLite reads
// by rowid and sorts; more, and walking the id order finds a page sooner.
const selectiveSearch = 2000

// CreateDeveloper validates and stores d.
func (db *DB) CreateDeveloper(ctx context.Context, d *keylens.Developer) error {
	if err := d.PrepareNew(db.Now()); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		if err := createDeveloper(ctx, tx, d); err != nil {
			return err
		}
		return nil
	})
}

// CreateDevelopers stores many developers in one transaction, for imports
// and benchmarks: all of them, or none on the first error.
func (db *DB) CreateDevelopers(ctx context.Context, devs []*keylens.Developer) error {
	for _, d := range devs {
		if err := d.PrepareNew(db.Now()); err != nil {
			return fmt.Errorf("%s: %w", d.Email, err)
		}
	}
	return db.write(ctx, func(tx *Tx) error {
		for _, d := range devs {
			if err := createDeveloper(ctx, tx, d); err != nil {
				return err
			}
		}
		return nil
	})
}

func createDeveloper(ctx context.Context, tx *Tx, d *keylens.Developer) error {
	if d.ID == "" {
		d.ID = keylens.NewObjectID(tx.now)
	} else if exists, err := developerExists(ctx, tx, d.ID); err != nil {
		return err
	} else if exists {
		return keylens.Errorf(keylens.ECONFLICT, "Developer %s already exists", d.ID)
	}
	if d.DateCreated.IsZero() {
		d.DateCreated = tx.now
	}
	if d.OrgID == "" {
		org, err := orgID(ctx, tx)
		if err != nil {
			return err
		}
		d.OrgID = org
	}
	if err := checkEmailFree(ctx, tx, d.Email, d.ID); err != nil {
		return err
	}
	fields, history, err := marshalDeveloperJSON(d)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO developers (`+developerColumns+`, email_lower)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.OrgID, d.Email, formatTime(d.DateCreated), d.Inactive, fields, d.Nonce, d.SSOKey,
		d.PasswordHash, history, d.PasswordMaxDays, formatTime(d.PasswordUpdated), formatTime(d.LastLoginDate),
		strings.ToLower(d.Email))
	if isUniqueViolation(err) {
		return keylens.Errorf(keylens.ECONFLICT, "A developer with this email already exists")
	} else if err != nil {
		return err
	}
	if err := recordChange(ctx, tx, keylens.ChangeDeveloper, d.ID, "", ""); err != nil {
		return err
	}
	if err := recordAudit(ctx, tx, keylens.AuditDeveloperCreated, keylens.ObjectDeveloper, d.ID, d.ID, d.Email); err != nil {
		return err
	}
	for _, hash := range slices.Sorted(maps.Keys(d.Keys)) {
		if err := insertKey(ctx, tx, &keylens.Key{Hash: hash, DeveloperID: d.ID, Policies: d.Keys[hash], DateCreated: tx.now}); err != nil {
			return err
		}
	}
	return writeSubscriptionsAndClients(ctx, tx, d)
}

// UpdateDeveloper replaces developer id with d (see the interface contract).
func (db *DB) UpdateDeveloper(ctx context.Context, id string, d *keylens.Developer) error {
	if d.ID != "" && d.ID != id {
		return keylens.Errorf(keylens.EINVALID, "Developer id in the body does not match the URL")
	}
	d.ID = id
	if err := d.PrepareUpdate(db.Now()); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		cur, err := findDeveloper(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		if err := updateDeveloper(ctx, tx, cur, d); err != nil {
			return err
		}
		return nil
	})
}

// PatchDeveloper changes the members p names, in one transaction.
func (db *DB) PatchDeveloper(ctx context.Context, id string, p keylens.DeveloperPatch) (*keylens.Developer, error) {
	// A new password is hashed before the transaction: bcrypt is slow.
	hash := ""
	if p.Password != "" {
		h, err := keylens.HashPassword(p.Password)
		if err != nil {
			return nil, err
		}
		hash = h
	}
	var d *keylens.Developer
	err := db.write(ctx, func(tx *Tx) error {
		cur, err := findDeveloper(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		d = p.Apply(cur)
		d.Password = ""
		if err := d.PrepareUpdate(tx.now); err != nil {
			return err
		}
		if hash != "" {
			d.PasswordHash, d.PasswordUpdated = hash, tx.now
		}
		return updateDeveloper(ctx, tx, cur, d)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// updateDeveloper writes d, a prepared replacement of cur, inside tx: the
// row, the key diff, subscriptions and OAuth clients, the change feed and
// the audit trail.
func updateDeveloper(ctx context.Context, tx *Tx, cur, d *keylens.Developer) error {
	id := cur.ID
	d.MergeUpdate(cur)
	if err := checkEmailFree(ctx, tx, d.Email, id); err != nil {
		return err
	}
	fields, history, err := marshalDeveloperJSON(d)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE developers SET org_id = ?, email = ?, email_lower = ?, date_created = ?,
		inactive = ?, fields = ?, nonce = ?, sso_key = ?, password_hash = ?, password_history = ?,
		password_max_days = ?, password_updated = ?, last_login_date = ? WHERE id = ?`,
		d.OrgID, d.Email, strings.ToLower(d.Email), formatTime(d.DateCreated), d.Inactive, fields, d.Nonce, d.SSOKey,
		d.PasswordHash, history, d.PasswordMaxDays, formatTime(d.PasswordUpdated), formatTime(d.LastLoginDate), id)
	if isUniqueViolation(err) {
		return keylens.Errorf(keylens.ECONFLICT, "A developer with this email already exists")
	} else if err != nil {
		return err
	}
	if err := recordChange(ctx, tx, keylens.ChangeDeveloper, id, "", ""); err != nil {
		return err
	}
	if err := recordAudit(ctx, tx, keylens.AuditDeveloperUpdated, keylens.ObjectDeveloper, id, id,
		keylens.DeveloperChanges(cur, d)); err != nil {
		return err
	}
	diff := keylens.DiffKeys(cur.Keys, d.Keys)
	for _, hash := range diff.Removed {
		if err := deleteKey(ctx, tx, id, hash); err != nil {
			return err
		}
	}
	for _, hash := range diff.Added {
		if err := insertKey(ctx, tx, &keylens.Key{Hash: hash, DeveloperID: id, Policies: d.Keys[hash], DateCreated: tx.now}); err != nil {
			return err
		}
	}
	for _, hash := range diff.Changed {
		if err := updateKeyPolicies(ctx, tx, id, hash, d.Keys[hash]); err != nil {
			return err
		}
	}
	for _, pol := range slices.Sorted(maps.Keys(cur.OAuthClients)) {
		for _, c := range cur.OAuthClients[pol] {
			if err := recordChange(ctx, tx, keylens.ChangeOAuthRemoved, id, "", c.ClientID); err != nil {
				return err
			}
		}
	}
	for _, table := range []string{"developer_subscriptions", "oauth_clients"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE developer_id = ?`, id); err != nil {
			return err
		}
	}
	if err := writeSubscriptionsAndClients(ctx, tx, d); err != nil {
		return err
	}
	// The tokens of clients the update removed go with them; those of
	// clients it kept stay.
	_, err = tx.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE developer_id = ?
		AND client_id NOT IN (SELECT client_id FROM oauth_clients WHERE developer_id = ?)`, id, id)
	return err
}

// DeleteDeveloper removes a developer; their keys, subscriptions and OAuth
// clients go with them (ON DELETE CASCADE).
func (db *DB) DeleteDeveloper(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *Tx) error {
		var hashes []string
		if err := eachRow(ctx, tx, `SELECT key_hash FROM developer_keys WHERE developer_id = ? ORDER BY key_hash`, []any{id}, func(rows *sql.Rows) error {
			var h string
			err := rows.Scan(&h)
			hashes = append(hashes, h)
			return err
		}); err != nil {
			return err
		}
		var clients []string
		if err := eachRow(ctx, tx, `SELECT client_id FROM oauth_clients WHERE developer_id = ? ORDER BY client_id`, []any{id}, func(rows *sql.Rows) error {
			var c string
			err := rows.Scan(&c)
			clients = append(clients, c)
			return err
		}); err != nil {
			return err
		}
		var email string
		if err := tx.QueryRowContext(ctx, `SELECT email FROM developers WHERE id = ?`, id).Scan(&email); errors.Is(err, sql.ErrNoRows) {
			return errDeveloperNotFound
		} else if err != nil {
			return err
		}
		if err := execOne(ctx, tx, errDeveloperNotFound, `DELETE FROM developers WHERE id = ?`, id); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditDeveloperDeleted, keylens.ObjectDeveloper, id, id,
			fmt.Sprintf("%s, with %d keys", email, len(hashes))); err != nil {
			return err
		}
		for _, h := range hashes {
			if err := recordChange(ctx, tx, keylens.ChangeKeyRevoked, id, h, ""); err != nil {
				return err
			}
		}
		for _, c := range clients {
			if err := recordChange(ctx, tx, keylens.ChangeOAuthRemoved, id, "", c); err != nil {
				return err
			}
		}
		if err := recordChange(ctx, tx, keylens.ChangeDeveloper, id, "", ""); err != nil {
			return err
		}
		return nil
	})
}

// VerifyCredentials checks a developer's email and password.
func (db *DB) VerifyCredentials(ctx context.Context, email, password string) (*keylens.Developer, error) {
	unauthorized := keylens.Errorf(keylens.EUNAUTHORIZED, "Invalid credentials")
	d, err := db.FindDeveloperByEmail(ctx, email)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		keylens.CheckPassword("", password) // same cost as a real check
		return nil, unauthorized
	} else if err != nil {
		return nil, err
	}
	if !keylens.CheckPassword(d.PasswordHash, password) || d.Inactive {
		return nil, unauthorized
	}
	if d.LastLoginDate, d.PasswordHash, err = db.signedIn(ctx, "developers", "last_login_date", d.ID, d.PasswordHash, password); err != nil {
		return nil, err
	}
	return d, nil
}

// signedIn records a successful sign-in of row id of table (developers,
// admins): the time, in lastCol, and the password again at the configured
// bcrypt cost when hash was made at another (imported, or made before
// --bcrypt-cost changed): the same password, so no history changes. It
// returns the time and the hash now stored.
func (db *DB) signedIn(ctx context.Context, table, lastCol, id, hash, password string) (time.Time, string, error) {
	rehash := ""
	if keylens.NeedsRehash(hash) {
		if h, err := keylens.HashPassword(password); err == nil {
			rehash = h // bcrypt before the transaction: it must not hold the write lock
		}
	}
	var at time.Time
	err := db.write(ctx, func(tx *Tx) error {
		at = tx.now
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+lastCol+` = ? WHERE id = ?`, formatTime(tx.now), id); err != nil {
			return err
		}
		if rehash != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET password_hash = ? WHERE id = ? AND password_hash = ?`, rehash, id, hash); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, "", err
	}
	if rehash != "" {
		hash = rehash
	}
	return at, hash, nil
}

// SetPassword replaces a developer's password.
func (db *DB) SetPassword(ctx context.Context, id, password string) error {
	d := &keylens.Developer{Password: password}
	if password == "" {
		return keylens.Errorf(keylens.EINVALID, "Password is required")
	}
	h, err := keylens.HashPassword(password)
	if err != nil {
		return err
	}
	d.PasswordHash = h
	return db.write(ctx, func(tx *Tx) error {
		cur, err := findDeveloper(ctx, tx, `id = ?`, id)
		if err != nil {
			return err
		}
		return writePassword(ctx, tx, cur, d.PasswordHash, keylens.AuditDeveloperPassword)
	})
}

func developerExists(ctx context.Context, tx *Tx, id string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM developers WHERE id = ?`, id).Scan(&n)
	return n > 0, err
}

func checkEmailFree(ctx context.Context, tx *Tx, email, selfID string) error {
	var other string
	err := tx.QueryRowContext(ctx, `SELECT id FROM developers WHERE email_lower = ? AND id <> ?`, strings.ToLower(email), selfID).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	return keylens.Errorf(keylens.ECONFLICT, "A developer with this email already exists")
}

func orgID(ctx context.Context, tx *Tx) (string, error) {
	org := keylens.NewObjectID(tx.now)
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, keylens.SettingOrgID, org); err != nil {
		return "", err
	}
	err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, keylens.SettingOrgID).Scan(&org)
	return org, err
}

func marshalDeveloperJSON(d *keylens.Developer) (fields, history string, err error) {
	f := d.Fields
	if f == nil {
		f = map[string]string{}
	}
	h := d.PasswordHistory
	if h == nil {
		h = []string{}
	}
	fb, err := json.Marshal(f)
	if err != nil {
		return "", "", err
	}
	hb, err := json.Marshal(h)
	return string(fb), string(hb), err
}

// writeSubscriptionsAndClients writes d's subscriptions and inserts its
// OAuth clients.
func writeSubscriptionsAndClients(ctx context.Context, tx *Tx, d *keylens.Developer) error {
	for _, pol := range slices.Sorted(maps.Keys(d.Subscriptions)) {
		if err := upsertSubscription(ctx, tx, d.ID, pol, d.Subscriptions[pol]); err != nil {
			return err
		}
	}
	for _, pol := range slices.Sorted(maps.Keys(d.OAuthClients)) {
		for i, c := range d.OAuthClients[pol] {
			if err := insertOAuthClient(ctx, tx, d.ID, pol, i, &c); err != nil {
				return err
			}
		}
	}
	return nil
}

func insertOAuthClient(ctx context.Context, tx *Tx, devID, policy string, position int, c *keylens.OAuthClient) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (client_id, developer_id, policy_id, position, secret,
		redirect_uri, app_description, use_case, date_created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ClientID, devID, policy, position, tx.db.seal(c.Secret), c.RedirectURI, c.AppDescription, c.UseCase, formatTime(c.DateCreated))
	if isUniqueViolation(err) {
		return keylens.Errorf(keylens.ECONFLICT, "OAuth client %s already exists", c.ClientID)
	}
	return err
}

var errDeveloperNotFound = keylens.Errorf(keylens.ENOTFOUND, "Developer not found")

func findDeveloper(ctx context.Context, q querier, where string, args ...any) (*keylens.Developer, error) {
	devs, err := queryDevelopers(ctx, q, `SELECT `+developerColumns+` FROM developers WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		return nil, errDeveloperNotFound
	}
	return devs[0], nil
}

// queryDevelopers runs a query over developerColumns and fills in each
// developer's keys, subscriptions and OAuth clients.
func queryDevelopers(ctx context.Context, q querier, query string, args ...any) ([]*keylens.Developer, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	devs := []*keylens.Developer{}
	for rows.Next() {
		d, err := scanDeveloper(rows)
		if err != nil {
			return nil, err
		}
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	return devs, loadDeveloperChildren(ctx, q, devs)
}

func scanDeveloper(rows *sql.Rows) (*keylens.Developer, error) {
	var (
		d                             keylens.Developer
		created, pwUpdated, lastLogin string
		fields, history               string
	)
	if err := rows.Scan(&d.ID, &d.OrgID, &d.Email, &created, &d.Inactive, &fields, &d.Nonce, &d.SSOKey,
		&d.PasswordHash, &history, &d.PasswordMaxDays, &pwUpdated, &lastLogin); err != nil {
		return nil, err
	}
	var err error
	if d.DateCreated, err = parseTime(created); err != nil {
		return nil, fmt.Errorf("developer %s date_created: %w", d.ID, err)
	}
	if d.PasswordUpdated, err = parseTime(pwUpdated); err != nil {
		return nil, fmt.Errorf("developer %s password_updated: %w", d.ID, err)
	}
	if d.LastLoginDate, err = parseTime(lastLogin); err != nil {
		return nil, fmt.Errorf("developer %s last_login_date: %w", d.ID, err)
	}
	if err := json.Unmarshal([]byte(fields), &d.Fields); err != nil {
		return nil, fmt.Errorf("developer %s fields: %w", d.ID, err)
	}
	if err := json.Unmarshal([]byte(history), &d.PasswordHistory); err != nil {
		return nil, fmt.Errorf("developer %s password history: %w", d.ID, err)
	}
	d.Keys = map[string][]string{}
	d.Subscriptions = map[string]string{}
	d.OAuthClients = map[string][]keylens.OAuthClient{}
	return &d, nil
}

// childBatch bounds the ids in one IN (...) list.
const childBatch = 500

func loadDeveloperChildren(ctx context.Context, q querier, devs []*keylens.Developer) error {
	for start := 0; start < len(devs); start += childBatch {
		batch := devs[start:min(start+childBatch, len(devs))]
		byID := make(map[string]*keylens.Developer, len(batch))
		ids := make([]any, len(batch))
		for i, d := range batch {
			byID[d.ID], ids[i] = d, d.ID
		}
		in := `(` + placeholders(len(ids)) + `)`
		if err := eachRow(ctx, q, `SELECT developer_id, key_hash, policies FROM developer_keys WHERE developer_id IN `+in, ids, func(rows *sql.Rows) error {
			var dev, hash, pols string
			if err := rows.Scan(&dev, &hash, &pols); err != nil {
				return err
			}
			var p []string
			if err := json.Unmarshal([]byte(pols), &p); err != nil {
				return fmt.Errorf("key %s policies: %w", hash, err)
			}
			byID[dev].Keys[hash] = nonNil(p)
			return nil
		}); err != nil {
			return err
		}
		if err := eachRow(ctx, q, `SELECT developer_id, policy_id, key_hash FROM developer_subscriptions WHERE developer_id IN `+in, ids, func(rows *sql.Rows) error {
			var dev, pol, hash string
			if err := rows.Scan(&dev, &pol, &hash); err != nil {
				return err
			}
			byID[dev].Subscriptions[pol] = hash
			return nil
		}); err != nil {
			return err
		}
		if err := eachRow(ctx, q, `SELECT developer_id, policy_id, client_id, secret, redirect_uri, app_description, use_case, date_created
			FROM oauth_clients WHERE developer_id IN `+in+` ORDER BY developer_id, policy_id, position`, ids, func(rows *sql.Rows) error {
			var dev, pol, created string
			var c keylens.OAuthClient
			if err := rows.Scan(&dev, &pol, &c.ClientID, &c.Secret, &c.RedirectURI, &c.AppDescription, &c.UseCase, &created); err != nil {
				return err
			}
			var err error
			if c.Secret, err = q.store().unseal(c.Secret); err != nil {
				return fmt.Errorf("oauth client %s: %w", c.ClientID, err)
			}
			if c.DateCreated, err = parseTime(created); err != nil {
				return fmt.Errorf("oauth client %s date_created: %w", c.ClientID, err)
			}
			byID[dev].OAuthClients[pol] = append(byID[dev].OAuthClients[pol], c)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func eachRow(ctx context.Context, q querier, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
