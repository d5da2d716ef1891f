package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/keylens/keylens"
)

// Approving a key request happens in three steps, so that no network call
// holds the write lock:
//
//  1. read what the approval is decided on (the request, its developer,
//     the catalogue), refuse what would be refused anyway, and mint the
//     credential (keylens.Issuer);
//  2. with a Provisioner, create it in the gateway, outside any
//     transaction;
//  3. store it in one write transaction, which checks again that the
//     request is still unapproved and the developer still there.
//
// When step 3 does not commit (another approval of the same request
// committed first, the developer was deleted, the store failed), what
// step 2 created is undone. A commit whose outcome is unknown (the
// connection was lost after COMMIT was sent) is read back first: a
// credential that did commit stays.

// ApproveKeyRequest approves request id.
func (db *DB) ApproveKeyRequest(ctx context.Context, id string) (*keylens.Approval, error) {
	r, err := findKeyRequest(ctx, db.rdb, id)
	if err != nil {
		return nil, err
	}
	if r.Approved { // before paying for a secret or a gateway call
		return nil, errAlreadyApproved(id)
	}
	return db.issue(ctx, r, false)
}

// IssueKey files a request for devID and approves it in one transaction.
func (db *DB) IssueKey(ctx context.Context, devID string, r *keylens.KeyRequest) (*keylens.Approval, error) {
	r.ByUser, r.Approved, r.Key = devID, false, ""
	r.Normalize()
	return db.issue(ctx, r, true)
}

// issue approves r, filing it first when file is set (IssueKey).
func (db *DB) issue(ctx context.Context, r *keylens.KeyRequest, file bool) (*keylens.Approval, error) {
	owner, err := findOwner(ctx, db.rdb, r.ByUser)
	if err != nil {
		return nil, err
	}
	if file {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	cat, err := db.Catalogue(ctx)
	if err != nil {
		return nil, err
	}
	if file {
		for _, p := range r.ApplyPolicies {
			if cat.Entry(p) == nil {
				return nil, keylens.Errorf(keylens.EINVALID, "Policy %s is not in the catalogue", p)
			}
		}
	}
	entry := cat.Entry(firstPolicy(r))
	var basic *keylens.BasicSecret
	if entry != nil && entry.AuthType == keylens.AuthBasic {
		if basic, err = keylens.NewBasicSecret(); err != nil { // bcrypt: never under the write lock
			return nil, err
		}
	}
	issuer := keylens.Issuer{OrgID: owner.OrgID, HashAlgorithm: db.KeyHashAlgorithm, Now: db.Now(), CentralJWT: db.CentralJWT}
	issued, err := issuer.Issue(r, entry, basic)
	if err != nil {
		return nil, err
	}
	var undo func(context.Context)
	if db.Provisioner != nil {
		if undo, err = db.Provisioner.Provision(ctx, issued, *owner); err != nil {
			return nil, err
		}
	}
	a := issued.Approval
	err = db.writeIssued(ctx, a, undo, func(tx *Tx) error {
		if file {
			if err := createKeyRequest(ctx, tx, r); err != nil {
				return err
			}
			if issued.Key != nil {
				issued.Key.RequestID = r.ID
			}
		} else if err := recheckRequest(ctx, tx, r); err != nil {
			return err
		}
		now, err := findOwner(ctx, tx, r.ByUser)
		if err != nil {
			return err
		}
		if err := storeIssued(ctx, tx, r, issued); err != nil {
			return err
		}
		if db.Provisioner != nil && issued.Key != nil && !sameOwner(owner, now) {
			// The developer changed since the gateway was given the key:
			// the outbox makes the gateway's copy agree.
			if err := recordChange(ctx, tx, keylens.ChangeKeyUpdated, r.ByUser, issued.Key.Hash, ""); err != nil {
				return err
			}
		}
		if file {
			objType, objID := keylens.ObjectKey, a.KeyHash
			if a.OAuthClient != nil {
				objType, objID = keylens.ObjectOAuthClient, a.OAuthClient.ClientID
			}
			if err := recordAudit(ctx, tx, keylens.AuditKeyIssued, objType, objID, r.ByUser, issuedDetail(r, a)); err != nil {
				return err
			}
		} else {
			if err := keepReveal(ctx, tx, r, a); err != nil {
				return err
			}
			if err := recordAudit(ctx, tx, keylens.AuditKeyRequestApproved, keylens.ObjectKeyRequest, r.ID, r.ByUser, issuedDetail(r, a)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// writeIssued runs fn in a write transaction that stores what a issued,
// already created in the gateway when undo is not nil. When the
// transaction fails, settleIssued decides: a commit whose outcome is
// unknown is read back (committed: nil), otherwise the gateway's copy is
// undone and the error returned.
func (db *DB) writeIssued(ctx context.Context, a *keylens.Approval, undo func(context.Context), fn func(tx *Tx) error) error {
	committing := false // set when the transaction's work is done: a failure after it is the commit's
	err := db.write(ctx, func(tx *Tx) error {
		committing = false
		if err := db.lockIssued(ctx, tx, a, undo); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		committing = true
		return nil
	})
	if err == nil {
		return nil
	}
	if committed, err := db.settleIssued(ctx, err, committing, a, undo); !committed {
		return err
	}
	return nil
}

// lockIssued takes, on PostgreSQL and when something was created in the
// gateway, the transaction lock of what a issued: the read-back of an
// unknown commit (settleIssued) waits on it for the transaction to end.
func (db *DB) lockIssued(ctx context.Context, tx *Tx, a *keylens.Approval, undo func(context.Context)) error {
	if !db.pg || undo == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, issuedLock(a))
	return err
}

// settleIssued decides what becomes of what a issued when the write
// transaction that stores it failed with err, committing set when the
// failure was the commit's: a commit whose outcome is unknown is read
// back (committed: it stays, and so does the credential in the gateway);
// otherwise what was created in the gateway is undone, and err is
// returned.
func (db *DB) settleIssued(ctx context.Context, err error, committing bool, a *keylens.Approval, undo func(context.Context)) (committed bool, _ error) {
	if undo == nil {
		return false, err
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	if committing {
		// COMMIT was sent and failed: it may have committed all the same.
		committed, cerr := db.issuedCommitted(uctx, a)
		switch {
		case cerr != nil:
			// Unknown: a credential nobody was given is safer left in
			// the gateway (tyk sync reports it) than one that committed
			// undone.
			return false, fmt.Errorf("%w (and whether it committed could not be read back: %v; the credential stays in the gateway)", err, cerr)
		case committed:
			return true, nil
		}
	}
	undo(uctx)
	return false, err
}

// undoTimeout bounds the undo of a credential created in the gateway for
// an approval that did not commit.
const undoTimeout = 10 * time.Second

// readBackTimeout bounds the wait for a transaction whose commit was lost
// to end.
var readBackTimeout = 30 * time.Second

// issuedCommitted reads back whether what a committed: its key or OAuth
// client is stored. On PostgreSQL it first waits for the approving
// transaction to end (its lock), should the server still be finishing it.
func (db *DB) issuedCommitted(ctx context.Context, a *keylens.Approval) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, readBackTimeout)
	defer cancel()
	tx, err := db.rdb.beginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if db.pg {
		if _, err := tx.ExecContext(ctx, rebind(`SELECT pg_advisory_xact_lock(?)`), issuedLock(a)); err != nil {
			return false, err
		}
	}
	q, arg := `SELECT COUNT(*) FROM developer_keys WHERE key_hash = ?`, a.KeyHash
	if a.OAuthClient != nil {
		q, arg = `SELECT COUNT(*) FROM oauth_clients WHERE client_id = ?`, a.OAuthClient.ClientID
	}
	var n int
	if err := tx.QueryRowContext(ctx, db.q(q), arg).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// issuedLock is the transaction lock of an approval, named by what it
// issued.
func issuedLock(a *keylens.Approval) int64 {
	h := fnv.New64a()
	h.Write([]byte("keylens approval "))
	if a.OAuthClient != nil {
		h.Write([]byte(a.OAuthClient.ClientID))
	} else {
		h.Write([]byte(a.KeyHash))
	}
	return int64(h.Sum64())
}

// recheckRequest checks in the write transaction that request r is as the
// approval read it: there, unapproved, for the same developer and
// policies.
func recheckRequest(ctx context.Context, tx *Tx, r *keylens.KeyRequest) error {
	cur, err := findKeyRequest(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	if cur.Approved {
		return errAlreadyApproved(r.ID)
	}
	if cur.ByUser != r.ByUser || !slices.Equal(cur.ApplyPolicies, r.ApplyPolicies) {
		return keylens.Errorf(keylens.ECONFLICT, "Key request %s changed while it was being approved; approve it again", r.ID)
	}
	return nil
}

// storeIssued files what approving r issued and marks r approved. The
// update counts only an unapproved request, so that of two approvals
// racing to commit, the second finds none to approve.
func storeIssued(ctx context.Context, tx *Tx, r *keylens.KeyRequest, issued *keylens.Issued) error {
	if c := issued.Approval.OAuthClient; c != nil {
		var position int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_clients WHERE developer_id = ? AND policy_id = ?`,
			r.ByUser, issued.Approval.PolicyID).Scan(&position); err != nil {
			return err
		}
		if err := insertOAuthClient(ctx, tx, r.ByUser, issued.Approval.PolicyID, position, c); err != nil {
			return err
		}
		if err := recordChange(ctx, tx, keylens.ChangeDeveloper, r.ByUser, "", ""); err != nil {
			return err
		}
	}
	var hash string
	if key := issued.Key; key != nil {
		hash = key.Hash
		if err := insertKey(ctx, tx, key); err != nil {
			return err
		}
		for _, p := range r.ApplyPolicies {
			if err := upsertSubscription(ctx, tx, r.ByUser, p, hash); err != nil {
				return err
			}
		}
	}
	// The key holds the JWT secret from now on: the request's copy goes.
	r.Approved, r.Key, r.JWTSecret = true, hash, ""
	return execOne(ctx, tx, errAlreadyApproved(r.ID), `UPDATE key_requests SET approved = ?, key_hash = ?, jwt_secret = '' WHERE id = ? AND approved = ?`,
		true, hash, r.ID, false)
}

// findOwner reads what a credential of developer id carries of them;
// errDeveloperNotFound when there is none.
func findOwner(ctx context.Context, q querier, id string) (*keylens.CredentialOwner, error) {
	o := &keylens.CredentialOwner{ID: id}
	var fields string
	err := q.QueryRowContext(ctx, `SELECT org_id, email, fields, inactive FROM developers WHERE id = ?`, id).
		Scan(&o.OrgID, &o.Email, &fields, &o.Inactive)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errDeveloperNotFound
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(fields), &o.Fields); err != nil {
		return nil, fmt.Errorf("developer %s fields: %w", id, err)
	}
	return o, nil
}

func sameOwner(a, b *keylens.CredentialOwner) bool {
	return a.OrgID == b.OrgID && a.Email == b.Email && a.Inactive == b.Inactive && maps.Equal(a.Fields, b.Fields)
}
