package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keylens/keylens"
)

// RotateKey replaces developer devID's key hash (keylens.KeyService).
// Everything that can refuse is checked before the write transaction, and
// the new key is provisioned in the gateway before it too (a network call
// never runs under the write lock); the transaction checks again what may
// have changed meanwhile and undoes the provisioning if it does not commit.
func (db *DB) RotateKey(ctx context.Context, devID, hash string, r keylens.KeyRotation) (*keylens.Rotation, error) {
	if err := keylens.CheckGrace(r.Grace, db.MaxRotationGrace); err != nil {
		return nil, err
	}
	old, err := resolve(ctx, db.rdb, resolveByHash, hash)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND || (err == nil && old.Key.DeveloperID != devID) {
		return nil, errKeyNotFound // another developer's key is not this one's either
	} else if err != nil {
		return nil, err
	}
	if err := rotatable(&old.Key, old.Owner.Inactive); err != nil {
		return nil, err
	}
	kind := old.Key.AuthType
	if kind == "" { // imported with its developer: its first policy's kind
		cat, err := db.Catalogue(ctx)
		if err != nil {
			return nil, err
		}
		if len(old.Key.Policies) > 0 {
			if e := cat.Entry(old.Key.Policies[0]); e != nil {
				kind = e.AuthType
			}
		}
	}
	var basic *keylens.BasicSecret
	if kind == keylens.AuthBasic || old.Key.AuthType == keylens.AuthBasic {
		if basic, err = keylens.NewBasicSecret(); err != nil { // bcrypt, outside the lock
			return nil, err
		}
	}
	issuer := keylens.Issuer{OrgID: old.Owner.OrgID, HashAlgorithm: db.KeyHashAlgorithm, Now: db.Now(), CentralJWT: db.CentralJWT}
	issued, err := issuer.Rotate(&old.Key, kind, r, basic)
	if err != nil {
		return nil, err
	}
	undo, err := db.provisionRotation(ctx, issued, old.Owner)
	if err != nil {
		return nil, err
	}
	// Stored as an approval is (approve.go): a failed transaction undoes
	// the gateway's new key, unless a lost commit is read back as done.
	a := issued.Approval
	var out *keylens.Rotation
	err = db.writeIssued(ctx, a, undo, func(tx *Tx) error {
		var err error
		out, err = rotateKey(ctx, tx, devID, hash, issued, r.Grace, &old.Owner, undo != nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// provisionRotation creates the new key in the gateway, when keylens
// provisions one (the Provisioner of approvals); the old key's end reaches
// the gateway through the change feed (the outbox). undo is nil without a
// gateway.
func (db *DB) provisionRotation(ctx context.Context, issued *keylens.Issued, owner keylens.CredentialOwner) (undo func(context.Context), err error) {
	if db.Provisioner == nil {
		return nil, nil
	}
	return db.Provisioner.Provision(ctx, issued, owner)
}

// rotatable refuses a key in its grace and an inactive owner's key.
func rotatable(k *keylens.Key, ownerInactive bool) error {
	if ownerInactive {
		return keylens.Errorf(keylens.EFORBIDDEN, "Developer is inactive: an inactive developer's keys cannot be rotated")
	}
	if k.ReplacedBy != "" || !k.ExpiresAt.IsZero() {
		return keylens.Errorf(keylens.ECONFLICT, "Key %s was already replaced by %s and is in its grace period until %s",
			k.Hash, k.ReplacedBy, k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// rotateKey stores a rotation in tx: the new key, the old key's grace end
// (or its removal, without grace), the subscriptions and key request
// pointed at the new key, the change and the audit entry.
//
// provisioned says the new key was created in the gateway for owner as
// read before the transaction: a developer changed since is recorded
// against the new key, so that the outbox makes the gateway's copy agree.
func rotateKey(ctx context.Context, tx *Tx, devID, hash string, issued *keylens.Issued, grace time.Duration,
	owner *keylens.CredentialOwner, provisioned bool) (*keylens.Rotation, error) {
	// Checked again under the lock: a rotation, revocation or
	// deactivation may have committed since the checks above.
	old, err := scanCredential(tx.QueryRowContext(ctx, resolveByHash, hash), tx.db, tx.now)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND || (err == nil && old.Key.DeveloperID != devID) {
		return nil, errKeyNotFound
	} else if err != nil {
		return nil, err
	}
	if err := rotatable(&old.Key, old.Owner.Inactive); err != nil {
		return nil, err
	}
	k := issued.Key
	if err := insertKey(ctx, tx, k); err != nil {
		return nil, err
	}
	if provisioned && !sameOwner(owner, &old.Owner) {
		if err := recordChange(ctx, tx, keylens.ChangeKeyUpdated, devID, k.Hash, ""); err != nil {
			return nil, err
		}
	}
	end := keylens.GraceEnd(tx.now, grace)
	if grace == 0 {
		if err := deleteKey(ctx, tx, devID, hash); err != nil {
			return nil, err
		}
	} else {
		if err := execOne(ctx, tx, errKeyNotFound, `UPDATE developer_keys SET expires_at = ?, replaced_by = ? WHERE developer_id = ? AND key_hash = ?`,
			end.Unix(), k.Hash, devID, hash); err != nil {
			return nil, err
		}
		if err := recordChange(ctx, tx, keylens.ChangeKeyRotated, devID, hash, ""); err != nil {
			return nil, err
		}
	}
	for _, p := range k.Policies {
		if err := upsertSubscription(ctx, tx, devID, p, k.Hash); err != nil {
			return nil, err
		}
	}
	if k.RequestID != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE key_requests SET key_hash = ? WHERE id = ? AND key_hash = ?`, k.Hash, k.RequestID, hash); err != nil {
			return nil, err
		}
	}
	detail := "replaced by key " + k.Hash + ", which resolves from now; this key stops at " + end.UTC().Format(time.RFC3339)
	if grace == 0 {
		detail = "replaced by key " + k.Hash + "; this key stopped at once (no grace period)"
	}
	if err := recordAudit(ctx, tx, keylens.AuditKeyRotated, keylens.ObjectKey, hash, devID, detail); err != nil {
		return nil, err
	}
	a := issued.Approval
	return &keylens.Rotation{RawKey: a.RawKey, Password: a.Password, KeyHash: k.Hash, Replaces: hash, OldKeyExpires: end.UTC()}, nil
}

// ExpireKeys removes the replaced keys whose grace has ended
// (keylens.KeyService). It takes the write lock only when one has.
func (db *DB) ExpireKeys(ctx context.Context) (int, time.Time, error) {
	var due int
	if err := db.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM developer_keys WHERE expires_at <> 0 AND expires_at <= ?`,
		db.Now().Unix()).Scan(&due); err != nil {
		return 0, time.Time{}, err
	}
	removed := 0
	if due > 0 {
		err := db.write(ctx, func(tx *Tx) error {
			type ended struct{ hash, dev, by string }
			var keys []ended
			if err := eachRow(ctx, tx, `SELECT key_hash, developer_id, replaced_by FROM developer_keys WHERE expires_at <> 0 AND expires_at <= ?`,
				[]any{tx.now.Unix()}, func(rows *sql.Rows) error {
					var e ended
					keys = append(keys, e)
					return rows.Scan(&keys[len(keys)-1].hash, &keys[len(keys)-1].dev, &keys[len(keys)-1].by)
				}); err != nil {
				return err
			}
			for _, k := range keys {
				if err := deleteKey(ctx, tx, k.dev, k.hash); err != nil {
					return err
				}
				if err := recordAudit(ctx, tx, keylens.AuditKeyExpired, keylens.ObjectKey, k.hash, k.dev,
					"its grace period ended; key "+k.by+" replaces it"); err != nil {
					return err
				}
			}
			removed = len(keys)
			return nil
		})
		if err != nil {
			return 0, time.Time{}, err
		}
	}
	var next sql.NullInt64
	err := db.rdb.QueryRowContext(ctx, `SELECT MIN(expires_at) FROM developer_keys WHERE expires_at <> 0`).Scan(&next)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return removed, time.Time{}, err
	}
	return removed, unixTime(next.Int64), nil
}

// RotateOAuthSecret gives developer devID's OAuth client clientID a new
// secret, the old one authenticating it until grace ends
// (keylens.KeyService).
func (db *DB) RotateOAuthSecret(ctx context.Context, devID, clientID string, grace time.Duration) (*keylens.SecretRotation, error) {
	if err := keylens.CheckGrace(grace, db.MaxRotationGrace); err != nil {
		return nil, err
	}
	out := &keylens.SecretRotation{ClientID: clientID, Secret: keylens.NewClientSecret()}
	err := db.write(ctx, func(tx *Tx) error {
		c, err := findOAuthClient(ctx, tx, clientID)
		if keylens.ErrorCode(err) == keylens.ENOTFOUND || (err == nil && c.developerID != devID) {
			return errOAuthClientNotFound
		} else if err != nil {
			return err
		}
		if c.inactive {
			return keylens.Errorf(keylens.EFORBIDDEN, "Developer is inactive: an inactive developer's OAuth clients cannot be rotated")
		}
		// Refused after the lookup, so that an unknown client is still 404.
		if db.Provisioner != nil {
			return keylens.Errorf(keylens.EINVALID, "OAuth client secrets are not rotated while keys are provisioned into a Tyk gateway: "+
				"a gateway's client has one secret. Delete the client and approve a new one")
		}
		// A rotation without grace may follow one still in its grace: it
		// ends the previous secret too (after a leak, say).
		if c.previous != "" && tx.now.Before(c.previousExpires) && grace > 0 {
			return keylens.Errorf(keylens.ECONFLICT, "OAuth client %s's previous secret is in its grace period until %s",
				clientID, c.previousExpires.UTC().Format(time.RFC3339))
		}
		if err := execOne(ctx, tx, errOAuthClientNotFound, `UPDATE oauth_clients SET secret = ? WHERE client_id = ? AND developer_id = ?`,
			tx.db.seal(out.Secret), clientID, devID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_previous_secrets WHERE client_id = ?`, clientID); err != nil {
			return err
		}
		end := keylens.GraceEnd(tx.now, grace)
		out.OldSecretExpires = end.UTC()
		detail := "the old secret stopped at once (no grace period)"
		if grace > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_previous_secrets (client_id, developer_id, secret, expires_at) VALUES (?, ?, ?, ?)`,
				clientID, devID, tx.db.seal(c.secret), end.Unix()); err != nil {
				return err
			}
			detail = "the old secret works until " + end.UTC().Format(time.RFC3339)
		}
		return recordAudit(ctx, tx, keylens.AuditOAuthSecretRotated, keylens.ObjectOAuthClient, clientID, devID, detail)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
