package sqlstore

import (
	"context"
	"database/sql"
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
