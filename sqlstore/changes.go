package sqlstore

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/keylens/keylens"
)

// changePollInterval is how often a waiting reader looks at the table even
// without an in-process wake-up, so that writes by another process sharing
// the store are seen well within a second.
const changePollInterval = 200 * time.Millisecond

// notifier wakes every waiter when a transaction with changes commits.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}

// Changed returns a channel closed at the next change this process
// commits, or, on PostgreSQL while listening, that any process commits.
// Unlike WaitForChanges it never polls: for a waiter that has a deadline
// of its own and only wants to be woken early.
func (db *DB) Changed() <-chan struct{} {
	db.startListening()
	return db.changed.wait()
}

// changeTimeLayout is fixed-width UTC, so that times compare as text.
const changeTimeLayout = "2006-01-02T15:04:05.000000000Z"

// recordChange appends to the change feed inside tx; Commit wakes waiters.
func recordChange(ctx context.Context, tx *Tx, kind, developerID, keyHash, clientID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO changes (at, kind, developer_id, key_hash, client_id) VALUES (?, ?, ?, ?, ?)`,
		tx.now.UTC().Format(changeTimeLayout), kind, developerID, keyHash, clientID)
	if err == nil && tx.db.pg && !tx.changed {
		// Delivered at commit to every listening process (listen.go).
		_, err = tx.ExecContext(ctx, `SELECT pg_notify('`+notifyChannel+`', '')`)
	}
	tx.changed = true
	return err
}

// The change feed's two reads, prepared once (a follower runs them every
// poll, every 200 ms).
const (
	changesPrunedThrough = `SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'changes_pruned_through'), 0)`
	changesAfter         = `SELECT seq, at, kind, developer_id, key_hash, client_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`
)

// ChangesSince returns changes with seq > after, oldest first.
func (db *DB) ChangesSince(ctx context.Context, after int64, limit int) ([]keylens.Change, bool, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	tx, err := db.beginRead(ctx)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	// A gap: changes after the reader's position were pruned unread.
	var pruned int64
	if err := tx.queryRowPrepared(ctx, changesPrunedThrough).Scan(&pruned); err != nil {
		return nil, false, err
	}
	gap := after < pruned
	rows, err := tx.queryPrepared(ctx, changesAfter, after, limit)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	out := []keylens.Change{}
	for rows.Next() {
		var c keylens.Change
		var at string
		if err := rows.Scan(&c.Seq, &at, &c.Kind, &c.DeveloperID, &c.KeyHash, &c.ClientID); err != nil {
			return nil, false, err
		}
		if c.Time, err = time.Parse(changeTimeLayout, at); err != nil {
			return nil, false, err
		}
		out = append(out, c)
	}
	return out, gap, rows.Err()
}

// WaitForChanges waits up to wait for a change after `after`.
func (db *DB) WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]keylens.Change, bool, error) {
	db.startListening()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(db.pollInterval())
	defer poll.Stop()
	for {
		woken := db.changed.wait() // before the query, so no commit slips between
		changes, gap, err := db.ChangesSince(ctx, after, limit)
		if err != nil || len(changes) > 0 || gap {
			return changes, gap, err
		}
		if db.parked != nil {
			db.parked()
		}
		select {
		case <-woken:
		case <-poll.C:
		case <-deadline.C:
			return changes, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// LastChange returns the newest sequence number.
func (db *DB) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	err := db.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes`).Scan(&seq)
	return seq, err
}

// PruneChanges deletes changes older than before, keeping the newest one
// so that sequence numbers never restart, and remembers how far it pruned
// so that readers behind that point learn of the gap.
func (db *DB) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.write(ctx, func(tx *Tx) error {
		var through int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM changes WHERE at < ? AND seq < (SELECT MAX(seq) FROM changes)`,
			before.UTC().Format(changeTimeLayout)).Scan(&through); err != nil {
			return err
		}
		if through == 0 {
			return nil
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE seq <= ?`, through)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('changes_pruned_through', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.FormatInt(through, 10)); err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
