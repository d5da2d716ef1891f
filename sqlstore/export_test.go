package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// SetPollIntervals sets the change feed's safety-net polls, so that a test
// of a wake-up fails when the wake-up does not come instead of being
// rescued by a poll.
func SetPollIntervals(db *DB, down, up time.Duration) { db.pollDown, db.pollUp = down, up }

// OnParked makes every change-feed reader of db call f when it has found
// nothing and starts waiting, so that a test of a wake-up commits its
// change only once the reader waits for it. Set it before any reader runs.
func OnParked(db *DB, f func()) { db.parked = f }

// Listening reports whether db's PostgreSQL listener is up (LISTEN done).
func Listening(db *DB) bool { return db.listen.listening.Load() }

// SetMaxPageCount caps the SQLite file's size, so that a test meets a full
// store (SQLITE_FULL, as a full disk gives) without filling a disk.
func SetMaxPageCount(db *DB, pages int) error {
	_, err := db.wdb.DB.Exec(`PRAGMA max_page_count = ` + strconv.Itoa(pages))
	return err
}

// RawQueryRow runs a query on the reader pool.
func (db *DB) RawQueryRow(ctx context.Context, query string) *sql.Row {
	return db.rdb.DB.QueryRowContext(ctx, query)
}

// SetExclusiveRetry sets how often Exclusive asks for its lock again.
func SetExclusiveRetry(d time.Duration) { exclusiveRetry = d }

// WriteLock is the advisory lock PostgreSQL portal writes take.
const WriteLock = writeLock

// StopCompactor stops db's hit-log compactor, so that a test decides when
// the log is folded (CompactHits).
func StopCompactor(db *DB) { db.stopCompactor() }

// CompactHits folds the whole hit log into the counters, a compaction at
// a time as the compactor does, and reports the series folded.
func CompactHits(ctx context.Context, db *DB) (int, error) {
	total := 0
	for range 1000 { // a compaction that deletes nothing would loop forever
		n, err := db.compactHits(ctx)
		if err != nil || n == 0 {
			db.countBacklog(ctx)
			return total, err
		}
		total += n
	}
	return total, fmt.Errorf("the hit log is not empty after 1000 compactions")
}

// HitLogSeries is the series the hit log holds.
func HitLogSeries(ctx context.Context, db *DB) (int64, error) {
	var n int64
	err := db.lr.QueryRowContext(ctx, `SELECT COALESCE(SUM(series), 0) FROM hit_log`).Scan(&n)
	return n, err
}

// ExecHitLog runs a statement on the hit log's writer (the log's file on
// SQLite), as damage or an operator would.
func ExecHitLog(ctx context.Context, db *DB, query string, args ...any) error {
	_, err := db.lw.ExecContext(ctx, query, args...)
	return err
}

// HitLogDamaged counts the rows set aside as damaged.
func HitLogDamaged(ctx context.Context, db *DB) (int, error) {
	var n int
	err := db.lr.QueryRowContext(ctx, `SELECT COUNT(*) FROM hit_log_damaged`).Scan(&n)
	return n, err
}
