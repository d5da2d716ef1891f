package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keylens/keylens"
)

// OAuth access tokens (migrations 0007): filed by hash, resolved through
// their client, revoked one by one or all of a client's at once. Deciding
// what a token is and comparing secrets is the domain's (package keylens's
// oauth.go); this only stores.

var (
	_ keylens.TokenService      = (*DB)(nil)
	_ keylens.TokenAdminService = (*DB)(nil)
)

var errOAuthClientNotFound = keylens.Errorf(keylens.ENOTFOUND, "OAuth client not found")

// oauthClient is what checking a client needs: its developer and its
// secret, opened, and its previous secret while that one's grace runs
// (after a rotation; "" when none).
type oauthClient struct {
	developerID, orgID, secret string
	inactive                   bool
	previous                   string
	previousExpires            time.Time
}

// findOAuthClient reads client id; ENOTFOUND if none.
func findOAuthClient(ctx context.Context, q querier, id string) (*oauthClient, error) {
	var c oauthClient
	var prev sql.NullString
	var prevExpires sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT c.developer_id, d.org_id, c.secret, d.inactive, p.secret, p.expires_at FROM oauth_clients c
		JOIN developers d ON d.id = c.developer_id
		LEFT JOIN oauth_previous_secrets p ON p.client_id = c.client_id AND p.developer_id = c.developer_id
		WHERE c.client_id = ?`, id).Scan(&c.developerID, &c.orgID, &c.secret, &c.inactive, &prev, &prevExpires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errOAuthClientNotFound
	} else if err != nil {
		return nil, err
	}
	if c.secret, err = q.store().unseal(c.secret); err != nil {
		return nil, err
	}
	if prev.Valid {
		if c.previous, err = q.store().unseal(prev.String); err != nil {
			return nil, err
		}
		c.previousExpires = unixTime(prevExpires.Int64)
	}
	return &c, nil
}

// secretMatches reports whether presented is the client's secret, or its
// previous one before that one's grace ended at now. Both are compared,
// in constant time, whatever the first gave.
func (c *oauthClient) secretMatches(presented string, now time.Time) bool {
	current := keylens.ClientSecretMatches(c.secret, presented)
	previous := keylens.ClientSecretMatches(c.previous, presented) && now.Before(c.previousExpires)
	return current || previous
}

// authenticateClient reads the client cred names and checks its secret:
// ErrInvalidClient for an unknown client or a wrong secret alike.
func (db *DB) authenticateClient(ctx context.Context, cred keylens.ClientCredentials) (*oauthClient, error) {
	c, err := findOAuthClient(ctx, db.rdb, cred.ID)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		// Compare anyway, so that an unknown client costs what a wrong
		// secret does.
		keylens.ClientSecretMatches("-", cred.Secret)
		keylens.ClientSecretMatches("-", cred.Secret)
		return nil, keylens.ErrInvalidClient
	} else if err != nil {
		return nil, err
	}
	if !c.secretMatches(cred.Secret, db.Now()) {
		return nil, keylens.ErrInvalidClient
	}
	return c, nil
}

func checkTokenHash(hash string) error {
	if keylens.TokenHashOf(hash) != hash {
		return keylens.Errorf(keylens.EINVALID, "A token hash is 64 lowercase hex characters")
	}
	return nil
}

// IssueToken files an access token for the client cred authenticates.
func (db *DB) IssueToken(ctx context.Context, cred keylens.ClientCredentials, hash string, ttl time.Duration) (*keylens.TokenGrant, error) {
	if err := checkTokenHash(hash); err != nil {
		return nil, err
	}
	if ttl < time.Second {
		return nil, keylens.Errorf(keylens.EINVALID, "A token lives at least a second")
	}
	c, err := db.authenticateClient(ctx, cred)
	if err != nil {
		return nil, err
	}
	if c.inactive {
		return nil, keylens.Errorf(keylens.ECONFLICT, "The client's developer is inactive")
	}
	var g *keylens.TokenGrant
	err = db.write(ctx, func(tx *Tx) error {
		issued, expires := tx.now.Unix(), tx.now.Add(ttl).Unix()
		// The client is read again in the transaction: deleted since,
		// it gets no token.
		var policy, devID string
		err := tx.QueryRowContext(ctx, `SELECT policy_id, developer_id FROM oauth_clients WHERE client_id = ?`, cred.ID).Scan(&policy, &devID)
		if errors.Is(err, sql.ErrNoRows) {
			return keylens.ErrInvalidClient
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_tokens (token_hash, client_id, developer_id, issued_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`, hash, cred.ID, devID, issued, expires); err != nil {
			return err
		}
		g = &keylens.TokenGrant{ClientID: cred.ID, DeveloperID: devID, Policies: []string{policy}, IssuedAt: issued, ExpiresAt: expires}
		return nil
	})
	return g, err
}

// RevokeClientToken revokes a token of the client cred authenticates.
func (db *DB) RevokeClientToken(ctx context.Context, cred keylens.ClientCredentials, hash string) error {
	if err := checkTokenHash(hash); err != nil {
		return err
	}
	if _, err := db.authenticateClient(ctx, cred); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		_, err := revokeToken(ctx, tx, cred.ID, hash)
		return err
	})
}

// RevokeToken revokes client clientID's token with hash, if it has one:
// ENOTFOUND for an unknown client; an unknown token changes nothing.
func (db *DB) RevokeToken(ctx context.Context, clientID, hash string) error {
	if err := checkTokenHash(hash); err != nil {
		return err
	}
	return db.write(ctx, func(tx *Tx) error {
		c, err := findOAuthClient(ctx, tx, clientID)
		if err != nil {
			return err
		}
		revoked, err := revokeToken(ctx, tx, clientID, hash)
		if err != nil || !revoked {
			return err
		}
		return recordAudit(ctx, tx, keylens.AuditOAuthTokenRevoked, keylens.ObjectOAuthClient, clientID, c.developerID, "")
	})
}

// revokeToken deletes the token and records the change; false when the
// client had no such token.
func revokeToken(ctx context.Context, tx *Tx, clientID, hash string) (bool, error) {
	var devID string
	err := tx.QueryRowContext(ctx, `DELETE FROM oauth_tokens WHERE token_hash = ? AND client_id = ? RETURNING developer_id`, hash, clientID).Scan(&devID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, recordChange(ctx, tx, keylens.ChangeTokenRevoked, devID, hash, clientID)
}

// RevokeAllTokens revokes every token of client cred.ID, whose secret
// cred.Secret must be: ENOTFOUND for an unknown client, EUNAUTHORIZED for
// a wrong secret.
func (db *DB) RevokeAllTokens(ctx context.Context, cred keylens.ClientCredentials) error {
	return db.write(ctx, func(tx *Tx) error {
		c, err := findOAuthClient(ctx, tx, cred.ID)
		if err != nil {
			return err
		}
		if !c.secretMatches(cred.Secret, tx.now) {
			return keylens.Errorf(keylens.EUNAUTHORIZED, "Wrong client secret")
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE client_id = ?`, cred.ID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if err := recordChange(ctx, tx, keylens.ChangeTokensRevoked, c.developerID, "", cred.ID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, keylens.AuditOAuthTokensRevoked, keylens.ObjectOAuthClient, cred.ID, c.developerID,
			fmt.Sprintf("%d tokens", n))
	})
}

// OAuthClientOrg returns the org of client clientID's developer (ENOTFOUND
// for an unknown client), for revocations forwarded to a gateway that
// issues the tokens itself.
func (db *DB) OAuthClientOrg(ctx context.Context, clientID string) (string, error) {
	oc, err := findOAuthClient(ctx, db.rdb, clientID)
	if err != nil {
		return "", err
	}
	return oc.orgID, nil
}

// resolveTokenQuery reads a live token, its client's policy and its
// developer: one query of the hot path, prepared once.
const resolveTokenQuery = `SELECT t.client_id, t.issued_at, t.expires_at, c.policy_id,
	d.id, d.email, d.org_id, d.fields, d.inactive
	FROM oauth_tokens t JOIN oauth_clients c ON c.client_id = t.client_id AND c.developer_id = t.developer_id
	JOIN developers d ON d.id = t.developer_id
	WHERE t.token_hash = ? AND t.expires_at > ?`

// ResolveToken reads a live token, its client's policy and its developer
// in one query.
func (db *DB) ResolveToken(ctx context.Context, hash string) (*keylens.Credential, error) {
	var c keylens.Credential
	var g keylens.TokenGrant
	var policy, fields string
	err := db.rdb.queryRowPrepared(ctx, resolveTokenQuery, hash, db.Now().Unix()).Scan(
		&g.ClientID, &g.IssuedAt, &g.ExpiresAt, &policy, &c.Owner.ID, &c.Owner.Email, &c.Owner.OrgID, &fields, &c.Owner.Inactive)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keylens.Errorf(keylens.ENOTFOUND, "Token not found")
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(fields), &c.Owner.Fields); err != nil {
		return nil, fmt.Errorf("developer %s fields: %w", c.Owner.ID, err)
	}
	g.DeveloperID, g.Policies = c.Owner.ID, []string{policy}
	c.Key = keylens.Key{Hash: hash, DeveloperID: c.Owner.ID, Policies: g.Policies, AuthType: keylens.AuthOAuth,
		Fields: map[string]any{}, DateCreated: time.Unix(g.IssuedAt, 0).UTC()}
	c.Token = &g
	return &c, nil
}

// PruneTokens removes expired tokens and those whose client is gone, and
// returns how many.
func (db *DB) PruneTokens(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_tokens WHERE expires_at <= ?
			OR NOT EXISTS (SELECT 1 FROM oauth_clients c WHERE c.client_id = oauth_tokens.client_id AND c.developer_id = oauth_tokens.developer_id)`, now.Unix())
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return err
		}
		// Previous secrets whose grace ended, or whose client is gone.
		_, err = tx.ExecContext(ctx, `DELETE FROM oauth_previous_secrets WHERE expires_at <= ?
			OR NOT EXISTS (SELECT 1 FROM oauth_clients c WHERE c.client_id = oauth_previous_secrets.client_id AND c.developer_id = oauth_previous_secrets.developer_id)`, now.Unix())
		return err
	})
	return n, err
}
