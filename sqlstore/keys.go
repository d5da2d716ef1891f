package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

const keyColumns = `key_hash, developer_id, policies, auth_type, request_id, fields, date_created, quota_reset_at,
	basic_username, basic_password_hash, jwt_secret, jwt_public_key, expires_at, replaced_by`

// insertKey files k under its developer; a hash or basic username another
// key holds is a conflict.
func insertKey(ctx context.Context, tx *Tx, k *keylens.Key) error {
	pols, err := json.Marshal(nonNil(k.Policies))
	if err != nil {
		return err
	}
	fields := k.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	fb, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO developer_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Hash, k.DeveloperID, string(pols), k.AuthType, k.RequestID, string(fb), formatTime(k.DateCreated), formatTime(k.QuotaResetAt),
		k.BasicUsername, k.BasicPasswordHash, tx.db.seal(k.JWTSecret), k.JWTPublicKey, k.ExpiresUnix(), k.ReplacedBy)
	if isUniqueViolation(err) {
		return keylens.Errorf(keylens.ECONFLICT, "Key %s belongs to another developer", k.Hash)
	} else if err != nil {
		return err
	}
	return recordChange(ctx, tx, keylens.ChangeKeyAdded, k.DeveloperID, k.Hash, "")
}

// deleteKey removes a developer's key and the subscriptions that point at
// it; ENOTFOUND when the developer has no such key.
func deleteKey(ctx context.Context, tx *Tx, devID, hash string) error {
	if err := execOne(ctx, tx, errKeyNotFound, `DELETE FROM developer_keys WHERE developer_id = ? AND key_hash = ?`, devID, hash); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM developer_subscriptions WHERE developer_id = ? AND key_hash = ?`, devID, hash); err != nil {
		return err
	}
	return recordChange(ctx, tx, keylens.ChangeKeyRevoked, devID, hash, "")
}

var errKeyNotFound = keylens.Errorf(keylens.ENOTFOUND, "Key not found")

// updateKeyPolicies sets a key's policies; ENOTFOUND as deleteKey.
func updateKeyPolicies(ctx context.Context, tx *Tx, devID, hash string, policies []string) error {
	pols, err := json.Marshal(nonNil(policies))
	if err != nil {
		return err
	}
	if err := execOne(ctx, tx, errKeyNotFound, `UPDATE developer_keys SET policies = ? WHERE developer_id = ? AND key_hash = ?`, string(pols), devID, hash); err != nil {
		return err
	}
	return recordChange(ctx, tx, keylens.ChangeKeyUpdated, devID, hash, "")
}

// FindKey returns the key filed under hash.
func (db *DB) FindKey(ctx context.Context, hash string) (*keylens.Key, error) {
	return findKey(ctx, db.rdb, `key_hash = ?`, hash)
}

// FindDeveloperKeys returns a developer's keys, oldest first, without
// their secrets.
func (db *DB) FindDeveloperKeys(ctx context.Context, devID string) ([]*keylens.Key, error) {
	out := []*keylens.Key{}
	err := eachRow(ctx, db.rdb, `SELECT key_hash, developer_id, policies, auth_type, request_id, fields, date_created, quota_reset_at,
		basic_username, expires_at, replaced_by FROM developer_keys WHERE developer_id = ? ORDER BY date_created, key_hash`, []any{devID}, func(rows *sql.Rows) error {
		var k keylens.Key
		var pols, fields, created, qrt string
		var expires int64
		if err := rows.Scan(&k.Hash, &k.DeveloperID, &pols, &k.AuthType, &k.RequestID, &fields, &created, &qrt, &k.BasicUsername,
			&expires, &k.ReplacedBy); err != nil {
			return err
		}
		k.ExpiresAt = unixTime(expires)
		if err := json.Unmarshal([]byte(pols), &k.Policies); err != nil {
			return fmt.Errorf("key %s policies: %w", k.Hash, err)
		}
		if err := json.Unmarshal([]byte(fields), &k.Fields); err != nil {
			return fmt.Errorf("key %s fields: %w", k.Hash, err)
		}
		var err error
		if k.DateCreated, err = parseTime(created); err != nil {
			return err
		}
		if k.QuotaResetAt, err = parseTime(qrt); err != nil {
			return err
		}
		k.Policies = nonNil(k.Policies)
		out = append(out, &k)
		return nil
	})
	return out, err
}

// FindKeyByBasicUsername returns the basic-auth key of username.
func (db *DB) FindKeyByBasicUsername(ctx context.Context, username string) (*keylens.Key, error) {
	if username == "" {
		return nil, errKeyNotFound
	}
	return findKey(ctx, db.rdb, `basic_username = ?`, username)
}

func findKey(ctx context.Context, q querier, where string, args ...any) (*keylens.Key, error) {
	var k keylens.Key
	err := scanKey(q.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM developer_keys WHERE `+where, args...), &k)
	if err == nil {
		err = q.store().openKey(&k)
	}
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// scanKey reads keyColumns, then any extra destinations, from row.
func scanKey(row *sql.Row, k *keylens.Key, extra ...any) error {
	var pols, fields, created, qrt string
	var expires int64
	err := row.Scan(append([]any{&k.Hash, &k.DeveloperID, &pols, &k.AuthType, &k.RequestID, &fields, &created, &qrt,
		&k.BasicUsername, &k.BasicPasswordHash, &k.JWTSecret, &k.JWTPublicKey, &expires, &k.ReplacedBy}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return errKeyNotFound
	} else if err != nil {
		return err
	}
	k.ExpiresAt = unixTime(expires)
	if err := json.Unmarshal([]byte(pols), &k.Policies); err != nil {
		return fmt.Errorf("key %s policies: %w", k.Hash, err)
	}
	if err := json.Unmarshal([]byte(fields), &k.Fields); err != nil {
		return fmt.Errorf("key %s fields: %w", k.Hash, err)
	}
	if k.DateCreated, err = parseTime(created); err != nil {
		return err
	}
	k.QuotaResetAt, err = parseTime(qrt)
	return err
}

var _ keylens.CredentialService = (*DB)(nil)

// resolveColumns are a key's columns and what an identity needs of its
// owner, for one JOIN.
var resolveColumns = func() string {
	cols := strings.Split(keyColumns, ",")
	for i := range cols {
		cols[i] = "k." + strings.TrimSpace(cols[i])
	}
	return strings.Join(cols, ", ") + ", d.email, d.org_id, d.fields, d.inactive"
}()

// ResolveKey reads the key with hash and its owner in one query; a
// replaced key whose grace has ended is not found, removed yet or not.
func (db *DB) ResolveKey(ctx context.Context, hash string) (*keylens.Credential, error) {
	return resolve(ctx, db.rdb, resolveByHash, hash)
}

// ResolveBasicUser reads the basic key of username and its owner in one
// query.
func (db *DB) ResolveBasicUser(ctx context.Context, username string) (*keylens.Credential, error) {
	if username == "" {
		return nil, errKeyNotFound
	}
	return resolve(ctx, db.rdb, resolveByBasicUser, username)
}

// The two resolutions: by key hash and by Basic username.
var (
	resolveByHash      = `SELECT ` + resolveColumns + ` FROM developer_keys k JOIN developers d ON d.id = k.developer_id WHERE k.key_hash = ?`
	resolveByBasicUser = `SELECT ` + resolveColumns + ` FROM developer_keys k JOIN developers d ON d.id = k.developer_id WHERE k.basic_username = ?`
)

func resolve(ctx context.Context, p *pool, query string, arg any) (*keylens.Credential, error) {
	return scanCredential(p.queryRowPrepared(ctx, query, arg), p.store(), p.store().Now())
}

// scanCredential reads a row of resolveColumns; a key expired at now is
// not found.
func scanCredential(row *sql.Row, db *DB, now time.Time) (*keylens.Credential, error) {
	var c keylens.Credential
	var fields string
	err := scanKey(row, &c.Key, &c.Owner.Email, &c.Owner.OrgID, &fields, &c.Owner.Inactive)
	if err == nil && c.Key.Expired(now) {
		err = errKeyNotFound
	}
	if err == nil {
		err = db.openKey(&c.Key)
	}
	if err != nil {
		return nil, err
	}
	c.Owner.ID = c.Key.DeveloperID
	if err := json.Unmarshal([]byte(fields), &c.Owner.Fields); err != nil {
		return nil, fmt.Errorf("developer %s fields: %w", c.Owner.ID, err)
	}
	return &c, nil
}

// ---- key requests ----

const keyRequestColumns = `id, org_id, by_user, for_api, for_plan, apply_policies, remove_policies, fields, approved,
	key_hash, date_created, version, jwt_secret, certificate, redirect_uri`

// CreateKeyRequest validates and stores r.
func (db *DB) CreateKeyRequest(ctx context.Context, r *keylens.KeyRequest) error {
	return db.write(ctx, func(tx *Tx) error {
		if err := createKeyRequest(ctx, tx, r); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditKeyRequestCreated, keylens.ObjectKeyRequest, r.ID, r.ByUser,
			"policies "+strings.Join(r.ApplyPolicies, ", ")); err != nil {
			return err
		}
		return nil
	})
}

func createKeyRequest(ctx context.Context, tx *Tx, r *keylens.KeyRequest) error {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return err
	}
	dev, err := findDeveloper(ctx, tx, `id = ?`, r.ByUser)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return keylens.Errorf(keylens.EINVALID, "by_user %s is not a developer", r.ByUser)
	} else if err != nil {
		return err
	}
	if err := checkPoliciesPublished(ctx, tx, r.ApplyPolicies); err != nil {
		return err
	}
	r.ID, r.Approved, r.Key = keylens.NewObjectID(tx.now), false, ""
	if r.DateCreated.IsZero() {
		r.DateCreated = tx.now
	}
	if r.OrgID == "" {
		r.OrgID = dev.OrgID
	}
	if err := writeKeyRequest(ctx, tx, r, true); err != nil {
		return err
	}
	return fileReveal(ctx, tx, r)
}

// checkPoliciesPublished requires every policy to have a catalogue entry:
// the entry decides what approval issues.
func checkPoliciesPublished(ctx context.Context, tx *Tx, policies []string) error {
	cat, err := loadCatalogue(ctx, tx)
	if err != nil {
		return err
	}
	for _, p := range policies {
		if cat.Entry(p) == nil {
			return keylens.Errorf(keylens.EINVALID, "Policy %s is not in the catalogue", p)
		}
	}
	return nil
}

func writeKeyRequest(ctx context.Context, tx *Tx, r *keylens.KeyRequest, insert bool) error {
	apply, _ := json.Marshal(r.ApplyPolicies)
	remove, _ := json.Marshal(r.RemovePolicies)
	fields, err := json.Marshal(r.Fields)
	if err != nil {
		return keylens.Errorf(keylens.EINVALID, "Key request fields do not encode")
	}
	args := []any{r.OrgID, r.ByUser, r.ForAPI, r.ForPlan, string(apply), string(remove), string(fields), r.Approved,
		r.Key, formatTime(r.DateCreated), r.Version, tx.db.seal(r.JWTSecret), r.Certificate, r.OAuthInfo.RedirectURI, r.ID}
	if insert {
		_, err = tx.ExecContext(ctx, `INSERT INTO key_requests (org_id, by_user, for_api, for_plan, apply_policies, remove_policies,
			fields, approved, key_hash, date_created, version, jwt_secret, certificate, redirect_uri, id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE key_requests SET org_id = ?, by_user = ?, for_api = ?, for_plan = ?, apply_policies = ?,
			remove_policies = ?, fields = ?, approved = ?, key_hash = ?, date_created = ?, version = ?, jwt_secret = ?,
			certificate = ?, redirect_uri = ? WHERE id = ?`, args...)
	}
	return err
}

// FindKeyRequestByID returns a request with its developer and catalogue.
func (db *DB) FindKeyRequestByID(ctx context.Context, id string) (*keylens.KeyRequest, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	r, err := findKeyRequest(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	return r, embedKeyRequests(ctx, tx, []*keylens.KeyRequest{r})
}

var errKeyRequestNotFound = keylens.Errorf(keylens.ENOTFOUND, "Key request not found")

// findKeyRequest reads one request, without embeds; ENOTFOUND if none.
func findKeyRequest(ctx context.Context, q querier, id string) (*keylens.KeyRequest, error) {
	reqs, err := queryKeyRequests(ctx, q, `SELECT `+keyRequestColumns+` FROM key_requests WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(reqs) == 0 {
		return nil, errKeyRequestNotFound
	}
	return reqs[0], nil
}

// FindKeyRequests returns a page of requests, each with its developer and
// catalogue embedded as Tyk's list does, and the total.
func (db *DB) FindKeyRequests(ctx context.Context, f keylens.KeyRequestFilter) ([]*keylens.KeyRequest, int, error) {
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	where, args := "1 = 1", []any{}
	if f.Approved != nil {
		where, args = "approved = ?", append(args, *f.Approved)
	}
	if f.ByUser != "" {
		where, args = where+" AND by_user = ?", append(args, f.ByUser)
	}
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM key_requests WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	query := `SELECT ` + keyRequestColumns + ` FROM key_requests WHERE ` + where + ` ORDER BY id`
	if f.Limit > 0 {
		query += ` LIMIT ? OFFSET ?`
		args = append(args, f.Limit, max(f.Offset, 0))
	}
	reqs, err := queryKeyRequests(ctx, tx, query, args...)
	if err != nil {
		return nil, 0, err
	}
	return reqs, total, embedKeyRequests(ctx, tx, reqs)
}

func queryKeyRequests(ctx context.Context, q querier, query string, args ...any) ([]*keylens.KeyRequest, error) {
	out := []*keylens.KeyRequest{}
	err := eachRow(ctx, q, query, args, func(rows *sql.Rows) error {
		var r keylens.KeyRequest
		var apply, remove, fields, created string
		if err := rows.Scan(&r.ID, &r.OrgID, &r.ByUser, &r.ForAPI, &r.ForPlan, &apply, &remove, &fields, &r.Approved,
			&r.Key, &created, &r.Version, &r.JWTSecret, &r.Certificate, &r.OAuthInfo.RedirectURI); err != nil {
			return err
		}
		var err error
		if r.JWTSecret, err = q.store().unseal(r.JWTSecret); err != nil {
			return fmt.Errorf("key request %s: %w", r.ID, err)
		}
		if r.DateCreated, err = parseTime(created); err != nil {
			return err
		}
		for dst, src := range map[any]string{&r.ApplyPolicies: apply, &r.RemovePolicies: remove, &r.Fields: fields} {
			if err := json.Unmarshal([]byte(src), dst); err != nil {
				return fmt.Errorf("key request %s: %w", r.ID, err)
			}
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}

// embedKeyRequests fills portal_developer, catalogue_entry (the first
// policy's) and catalogues (every policy's).
func embedKeyRequests(ctx context.Context, tx *Tx, reqs []*keylens.KeyRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	cat, err := loadCatalogue(ctx, tx)
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	for _, r := range reqs {
		ids[r.ByUser] = true
	}
	args := make([]any, 0, len(ids))
	for id := range ids {
		args = append(args, id)
	}
	devs := map[string]*keylens.Developer{}
	for start := 0; start < len(args); start += childBatch {
		batch := args[start:min(start+childBatch, len(args))]
		ds, err := queryDevelopers(ctx, tx, `SELECT `+developerColumns+` FROM developers WHERE id IN (`+placeholders(len(batch))+`)`, batch...)
		if err != nil {
			return err
		}
		for _, d := range ds {
			devs[d.ID] = d
		}
	}
	for _, r := range reqs {
		r.PortalDeveloper = devs[r.ByUser]
		r.Catalogues = []keylens.CatalogueEntry{}
		for i, p := range r.ApplyPolicies {
			if e := cat.Entry(p); e != nil {
				r.Catalogues = append(r.Catalogues, *e)
				if i == 0 {
					r.CatalogueEntry = e
				}
			}
		}
	}
	return nil
}

// UpdateKeyRequest replaces what a client may change on a request.
func (db *DB) UpdateKeyRequest(ctx context.Context, id string, r *keylens.KeyRequest) error {
	if r.ID != "" && r.ID != id {
		return keylens.Errorf(keylens.EINVALID, "Key request id in the body does not match the URL")
	}
	r.Normalize()
	if err := r.Validate(); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		cur, err := findKeyRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if exists, err := developerExists(ctx, tx, r.ByUser); err != nil {
			return err
		} else if !exists {
			return keylens.Errorf(keylens.EINVALID, "by_user %s is not a developer", r.ByUser)
		}
		if err := checkPoliciesPublished(ctx, tx, r.ApplyPolicies); err != nil {
			return err
		}
		// Approval state, key and creation belong to the server; the JWT
		// secret is write-only (never answered), so a replacement without
		// one keeps the stored one.
		r.ID, r.Approved, r.Key, r.DateCreated = id, cur.Approved, cur.Key, cur.DateCreated
		if r.JWTSecret == "" && !cur.Approved {
			r.JWTSecret = cur.JWTSecret
		}
		if cur.Approved {
			r.JWTSecret = "" // the key holds it now, and only the key
		}
		if r.OrgID == "" {
			r.OrgID = cur.OrgID
		}
		if err := writeKeyRequest(ctx, tx, r, false); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditKeyRequestUpdated, keylens.ObjectKeyRequest, id, r.ByUser,
			"policies "+strings.Join(r.ApplyPolicies, ", ")); err != nil {
			return err
		}
		return nil
	})
}

// DeleteKeyRequest removes a request; a key it produced stays (revoke it
// through the developer's keys).
func (db *DB) DeleteKeyRequest(ctx context.Context, id string) error {
	return db.write(ctx, func(tx *Tx) error {
		r, err := findKeyRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_requests WHERE id = ?`, id); err != nil {
			return err
		}
		detail := "pending, policies " + strings.Join(r.ApplyPolicies, ", ")
		if r.Approved {
			detail = "approved (its key " + r.Key + " stays), policies " + strings.Join(r.ApplyPolicies, ", ")
		}
		if err := recordAudit(ctx, tx, keylens.AuditKeyRequestDeleted, keylens.ObjectKeyRequest, id, r.ByUser, detail); err != nil {
			return err
		}
		return nil
	})
}

// issuedDetail says what an approval issued, for the audit trail: the key
// hash or the OAuth client id, never a secret.
func issuedDetail(r *keylens.KeyRequest, a *keylens.Approval) string {
	what := "key " + a.KeyHash
	if a.OAuthClient != nil {
		what = "OAuth client " + a.OAuthClient.ClientID
	}
	return what + " for " + strings.Join(r.ApplyPolicies, ", ")
}

func errAlreadyApproved(id string) error {
	return keylens.Errorf(keylens.ECONFLICT, "Key request %s is already approved", id)
}

func firstPolicy(r *keylens.KeyRequest) string {
	if len(r.ApplyPolicies) == 0 {
		return ""
	}
	return r.ApplyPolicies[0]
}

// upsertSubscription points developer devID's subscription to policy at
// the key hash.
func upsertSubscription(ctx context.Context, tx *Tx, devID, policy, hash string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO developer_subscriptions (developer_id, policy_id, key_hash) VALUES (?, ?, ?)
		ON CONFLICT (developer_id, policy_id) DO UPDATE SET key_hash = excluded.key_hash`, devID, policy, hash)
	return err
}

// SetKeyPolicies replaces the policies of a developer's key and points the
// developer's subscriptions for them at it.
func (db *DB) SetKeyPolicies(ctx context.Context, devID, hash string, policies []string) error {
	if len(policies) == 0 {
		return keylens.Errorf(keylens.EINVALID, "apply_policies needs at least one policy")
	}
	return db.write(ctx, func(tx *Tx) error {
		if err := checkPoliciesPublished(ctx, tx, policies); err != nil {
			return err
		}
		var old string
		if err := tx.QueryRowContext(ctx, `SELECT policies FROM developer_keys WHERE developer_id = ? AND key_hash = ?`, devID, hash).Scan(&old); errors.Is(err, sql.ErrNoRows) {
			return errKeyNotFound
		} else if err != nil {
			return err
		}
		var oldPols []string
		_ = json.Unmarshal([]byte(old), &oldPols)
		if err := updateKeyPolicies(ctx, tx, devID, hash, policies); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditKeyPolicies, keylens.ObjectKey, hash, devID,
			strings.Join(oldPols, ", ")+" → "+strings.Join(policies, ", ")); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM developer_subscriptions WHERE developer_id = ? AND key_hash = ?`, devID, hash); err != nil {
			return err
		}
		for _, p := range policies {
			if err := upsertSubscription(ctx, tx, devID, p, hash); err != nil {
				return err
			}
		}
		return nil
	})
}

// RevokeKey removes a developer's key.
func (db *DB) RevokeKey(ctx context.Context, devID, hash string) error {
	return db.write(ctx, func(tx *Tx) error {
		if err := deleteKey(ctx, tx, devID, hash); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditKeyRevoked, keylens.ObjectKey, hash, devID, ""); err != nil {
			return err
		}
		return nil
	})
}

// ResetKeyQuota records a quota reset.
func (db *DB) ResetKeyQuota(ctx context.Context, devID, hash string) error {
	return db.write(ctx, func(tx *Tx) error {
		if err := execOne(ctx, tx, errKeyNotFound, `UPDATE developer_keys SET quota_reset_at = ? WHERE developer_id = ? AND key_hash = ?`, formatTime(tx.now), devID, hash); err != nil {
			return err
		}
		// For the gateway, which counts the key's quota itself.
		if err := recordChange(ctx, tx, keylens.ChangeQuotaReset, devID, hash, ""); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditKeyQuotaReset, keylens.ObjectKey, hash, devID, ""); err != nil {
			return err
		}
		return nil
	})
}

// DeleteOAuthClient removes an OAuth client.
func (db *DB) DeleteOAuthClient(ctx context.Context, clientID string) error {
	return db.write(ctx, func(tx *Tx) error {
		var devID string
		err := tx.QueryRowContext(ctx, `SELECT developer_id FROM oauth_clients WHERE client_id = ?`, clientID).Scan(&devID)
		if errors.Is(err, sql.ErrNoRows) {
			return keylens.Errorf(keylens.ENOTFOUND, "OAuth client not found")
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_clients WHERE client_id = ?`, clientID); err != nil {
			return err
		}
		// Its tokens go with it (oauth.go); the change below drops them
		// from every cache.
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE client_id = ?`, clientID); err != nil {
			return err
		}
		if err := recordChange(ctx, tx, keylens.ChangeOAuthRemoved, devID, "", clientID); err != nil {
			return err
		}
		if err := recordAudit(ctx, tx, keylens.AuditOAuthClientDeleted, keylens.ObjectOAuthClient, clientID, devID, ""); err != nil {
			return err
		}
		return nil
	})
}
