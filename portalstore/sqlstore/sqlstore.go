// Package sqlstore implements the portalstore services on SQL. SQLite
// (modernc.org/sqlite, pure Go) is the embedded default; the SQL is kept
// portable so that PostgreSQL can run behind the same code.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keylens/keylens/portalstore"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// Compile-time checks that DB provides every service.
var (
	_ portalstore.DeveloperService = (*DB)(nil)
	_ portalstore.SettingsService  = (*DB)(nil)
	_ portalstore.CatalogueService = (*DB)(nil)
	_ portalstore.KeyService       = (*DB)(nil)
	_ portalstore.ChangeService    = (*DB)(nil)
)

// DB is an open store. Public methods each run in one transaction; the
// lowercase helpers they call take that transaction.
type DB struct {
	// wdb serialises writers: SQLite allows one at a time, and queueing
	// them in Go (one connection, BEGIN IMMEDIATE) beats retrying on
	// SQLITE_BUSY. rdb serves reads concurrently from the WAL.
	wdb, rdb *sql.DB

	// Now is the clock, replaceable in tests.
	Now func() time.Time
	// KeyHashAlgorithm is written into generated keys ("h"); Tyk's
	// hash_key_function. Default portalstore.DefaultHashAlgorithm.
	KeyHashAlgorithm string

	changed *notifier
}

// Open opens the store named by dsn, "sqlite:PATH", creating the file and its
// directory when missing, and applies pending migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return nil, fmt.Errorf("unsupported store %q: want sqlite:PATH", dsn)
	}
	if err := ValidateSQLitePath(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"
	wdb, err := sql.Open("sqlite", path+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	rdb, err := sql.Open("sqlite", path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		wdb.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
	rdb.SetMaxIdleConns(max(4, 2*runtime.GOMAXPROCS(0)))

	db := &DB{wdb: wdb, rdb: rdb, Now: time.Now,
		KeyHashAlgorithm: portalstore.DefaultHashAlgorithm, changed: newNotifier()}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	return db, nil
}

// ValidateSQLitePath reports a path the driver would misread.
func ValidateSQLitePath(path string) error {
	switch {
	case path == "":
		return errors.New("sqlite store needs a path: sqlite:PATH")
	case strings.ContainsAny(path, "?#"):
		return fmt.Errorf("sqlite path %q must not contain ? or #", path)
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return fmt.Errorf("sqlite path %q: give a file path (the store must survive a restart)", path)
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	return errors.Join(db.wdb.Close(), db.rdb.Close())
}

// Ping checks that the store answers, for health checks.
func (db *DB) Ping(ctx context.Context) error {
	return db.rdb.PingContext(ctx)
}

// migrate applies, in name order, every embedded migration not yet recorded
// in schema_migrations, each in its own transaction.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.wdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY)`); err != nil {
		return err
	}
	names, err := fs.Glob(sqliteMigrations, "migrations/sqlite/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.migrateFile(ctx, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func (db *DB) migrateFile(ctx context.Context, name string) error {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	} else if n > 0 {
		return nil
	}
	body, err := fs.ReadFile(sqliteMigrations, name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES (?)`, name); err != nil {
		return err
	}
	return tx.Commit()
}

// Tx wraps a transaction with the time it started, so that every row a
// service call writes carries the same instant.
type Tx struct {
	*sql.Tx
	db      *DB
	now     time.Time
	changed bool // the change feed grew: wake its readers on commit
}

// Commit commits and wakes change-feed readers if the feed grew.
func (tx *Tx) Commit() error {
	if err := tx.Tx.Commit(); err != nil {
		return err
	}
	if tx.changed {
		tx.db.changed.broadcast()
	}
	return nil
}

// begin starts a write transaction (serialised, BEGIN IMMEDIATE).
func (db *DB) begin(ctx context.Context) (*Tx, error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, db: db, now: db.Now()}, nil
}

// beginRead starts a read-only transaction on the reader pool, for calls
// that need several queries to see one snapshot.
func (db *DB) beginRead(ctx context.Context) (*Tx, error) {
	tx, err := db.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx, db: db, now: db.Now()}, nil
}

// Setting returns a stored setting; ENOTFOUND if absent.
func (db *DB) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := db.rdb.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", portalstore.Errorf(portalstore.ENOTFOUND, "Setting %s is not set", name)
	}
	return v, err
}

// InitSetting sets name unless set and returns the value in effect.
func (db *DB) InitSetting(ctx context.Context, name, value string) (string, error) {
	tx, err := db.begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", err
	}
	var v string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", err
	}
	return v, tx.Commit()
}

// PutSetting sets name to value.
func (db *DB) PutSetting(ctx context.Context, name, value string) error {
	_, err := db.wdb.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

// OrgID returns the portal's org id, creating it on first use.
func (db *DB) OrgID(ctx context.Context) (string, error) {
	return db.InitSetting(ctx, portalstore.SettingOrgID, portalstore.NewObjectID(db.Now()))
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// execOne runs a statement that must change exactly one row, answering
// notFound when it changed none.
func execOne(ctx context.Context, e interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, notFound error, query string, args ...any) error {
	res, err := e.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound
	}
	return nil
}

// formatTime stores t as RFC 3339 with its own offset; the zero time as "".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// parseTime reverses formatTime.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
