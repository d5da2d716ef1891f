package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/keylens/keylens"
)

// SkipChange keeps c as skipped, for reason (a skip of the same change
// again replaces the reason).
func (db *DB) SkipChange(ctx context.Context, c keylens.Change, reason string) error {
	_, err := db.wdb.ExecContext(ctx, `INSERT INTO skipped_changes (seq, at, kind, developer_id, key_hash, client_id, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason`,
		c.Seq, c.Time.UTC().Format(changeTimeLayout), c.Kind, c.DeveloperID, c.KeyHash, c.ClientID, reason)
	return err
}

// SkippedChanges returns the skipped changes, oldest first.
func (db *DB) SkippedChanges(ctx context.Context) ([]keylens.SkippedChange, error) {
	var out []keylens.SkippedChange
	err := eachRow(ctx, db.rdb, `SELECT seq, at, kind, developer_id, key_hash, client_id, reason FROM skipped_changes ORDER BY seq`, nil,
		func(rows *sql.Rows) error {
			var s keylens.SkippedChange
			var at string
			if err := rows.Scan(&s.Seq, &at, &s.Kind, &s.DeveloperID, &s.KeyHash, &s.ClientID, &s.Reason); err != nil {
				return err
			}
			s.Time, _ = time.Parse(changeTimeLayout, at)
			out = append(out, s)
			return nil
		})
	return out, err
}

// ForgetSkippedChange drops skipped change seq, once applied.
func (db *DB) ForgetSkippedChange(ctx context.Context, seq int64) error {
	_, err := db.wdb.ExecContext(ctx, `DELETE FROM skipped_changes WHERE seq = ?`, seq)
	return err
}
