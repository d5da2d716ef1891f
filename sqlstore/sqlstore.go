// Package sqlstore implements the keylens services on SQL. SQLite
// (modernc.org/sqlite, pure Go) is the embedded default; PostgreSQL (pgx)
// runs behind the same code: the SQL is portable, written with ?
// placeholders that are rebound to $n for PostgreSQL.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keylens/keylens"
)

//go:embed migrations/sqlite/*.sql migrations/sqlite-analytics/*.sql migrations/sqlite-hitlog/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Compile-time checks that DB provides every service.
var (
	_ keylens.DeveloperService = (*DB)(nil)
	_ keylens.SettingsService  = (*DB)(nil)
	_ keylens.CatalogueService = (*DB)(nil)
	_ keylens.KeyService       = (*DB)(nil)
	_ keylens.ChangeService    = (*DB)(nil)
)

// DB is an open store. Public methods each run in one transaction; the
// lowercase helpers they call take that transaction.
type DB struct {
	// wdb serialises writers: SQLite allows one at a time, and queueing
	// them in Go (one connection, BEGIN IMMEDIATE) beats retrying on
	// SQLITE_BUSY. rdb serves reads concurrently from the WAL.
	wdb, rdb *pool
	// hw commits the hit counters and hr reads them. On SQLite they are
	// a file of their own (AnalyticsPath) with its own writer, so that a
	// portal write never queues behind a hit commit; on PostgreSQL hw is
	// a pool of its own whose transactions take no advisory lock, and hr
	// is rdb.
	hw, hr *pool
	// lw appends to the hit log and lr reads it (hitlog.go). On SQLite
	// the log is a third file (HitLogPath) with its own writer, so that a
	// hit commit never queues behind a compaction; on PostgreSQL they are
	// hw and hr.
	lw, lr *pool
	// hits is the hit log's compactor (hitlog.go).
	hits hitLog
	// pg is set for PostgreSQL: placeholders are rebound, and every
	// portal write transaction takes one advisory lock (see begin), so
	// that portal writers from every process sharing the database commit
	// one at a time, as SQLite's do, and change-feed sequence numbers
	// commit in order.
	pg     bool
	dsn    string   // PostgreSQL's, for the listener
	listen listener // PostgreSQL: LISTEN for other processes' changes

	// Now is the clock, replaceable in tests.
	Now func() time.Time
	// KeyHashAlgorithm is written into generated keys ("h"); Tyk's
	// hash_key_function. Default keylens.DefaultHashAlgorithm.
	KeyHashAlgorithm string
	// Provisioner, when set, creates each approval's credential in the
	// gateway before the transaction that stores it (approve.go), never
	// under the write lock: its refusal fails the approval, and what it
	// created is undone if that transaction does not commit.
	Provisioner keylens.Provisioner
	// MaxRotationGrace bounds the grace period of a rotated key (0: a
	// rotated key stops at once). Default keylens.DefaultMaxRotationGrace.
	MaxRotationGrace time.Duration
	// CentralJWT says JWTs are verified against an identity provider's
	// keys, so that jwt requests without material may be approved
	// (keylens.Issuer.CentralJWT).
	CentralJWT bool

	changed *notifier
	// Change-feed polls, the safety net under the wake-ups: while the
	// PostgreSQL listener is down (and always on SQLite, whose writers
	// all wake readers in process), and while it is up.
	pollDown, pollUp time.Duration
	// parked, set by tests only (export_test.go), is called each time a
	// change-feed reader has found nothing and starts waiting.
	parked func()
	// secrets seals secrets at rest; nil stores them as Tyk does.
	secrets *secretBox
	// Logger hears when the store runs out of space and when it has
	// space again (with the writes refused meanwhile): two lines per
	// episode and file, however many requests it refuses. Nowhere when
	// nil.
	Logger *slog.Logger
}

// Open opens the store named by dsn, "sqlite:PATH" (creating the file and
// its directory when missing) or a postgres:// URL, and applies pending
// migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn)
	}
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		return nil, fmt.Errorf("unsupported store %q: want sqlite:PATH or postgres://URL", dsn)
	}
	if err := ValidateSQLitePath(path); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	wdb, rdb, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	// The hit counters live in a file of their own, with its own writer:
	// SQLite has one writer per file, and a portal write must not queue
	// behind a commit of thousands of counters.
	hpath := AnalyticsPath(path)
	hw, hr, err := openSQLite(hpath)
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	lpath := HitLogPath(path)
	// Its readers map the file (its first 256 MB): a query reads the log
	// rows its keys may be in, all of them for a key in every commit, and
	// a whole log of two million series through read calls and SQLite's
	// page cache took about twice as long (BenchmarkQueryWithBacklog). At
	// the committer's ten million the log is larger than what is mapped:
	// 410-970 MB (41-97 bytes a series, for key hashes of 8-64 hex digits).
	lw, lr, err := openSQLite(lpath, "&_pragma=mmap_size(268435456)")
	if err != nil {
		wdb.Close()
		rdb.Close()
		hw.Close()
		hr.Close()
		return nil, err
	}
	db := &DB{wdb: &pool{DB: wdb, writer: true, name: "portal"}, rdb: &pool{DB: rdb}, hw: &pool{DB: hw, writer: true, name: "hit counters"}, hr: &pool{DB: hr},
		lw: &pool{DB: lw, writer: true, name: "hit log"}, lr: &pool{DB: lr},
		Now: time.Now, KeyHashAlgorithm: keylens.DefaultHashAlgorithm, MaxRotationGrace: keylens.DefaultMaxRotationGrace, changed: newNotifier(),
		pollDown: changePollInterval, pollUp: listeningPollInterval}
	db.wdb.db, db.rdb.db, db.hw.db, db.hr.db, db.lw.db, db.lr.db = db, db, db, db, db, db
	if err := db.migrate(ctx, db.wdb, "migrations/sqlite/*.sql"); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if err := db.migrate(ctx, db.hw, "migrations/sqlite-analytics/*.sql"); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", hpath, err)
	}
	if err := db.migrate(ctx, db.lw, "migrations/sqlite-hitlog/*.sql"); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", lpath, err)
	}
	if err := db.moveHitsOut(ctx, path); err != nil {
		db.Close()
		return nil, fmt.Errorf("move the hit counters from %s to %s: %w", path, hpath, err)
	}
	if err := db.moveBatchIDs(ctx, hpath); err != nil {
		db.Close()
		return nil, fmt.Errorf("move the hit batch ids from %s to %s: %w", hpath, lpath, err)
	}
	if err := db.raiseLogSeq(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", lpath, err)
	}
	// SQLite parses a query on every unprepared call, a sizeable share
	// of a key's resolution. (pgx caches PostgreSQL's statements itself,
	// as the DSN's default_query_exec_mode says, which PgBouncer users
	// set: explicit statements would override it.)
	if err := db.rdb.prepare(ctx, resolveByHash, resolveByBasicUser, changesPrunedThrough, changesAfter); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	return db, nil
}

// openSQLite opens a SQLite file's writer (one connection: writers queue
// in Go, which beats retrying on SQLITE_BUSY) and readers (concurrent,
// from the WAL).
func openSQLite(path string, readerPragmas ...string) (wdb, rdb *sql.DB, err error) {
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)"
	// The writer keeps up to 64 MiB of pages (SQLite's default is 2 MiB),
	// so that a transaction of thousands of counter rows spread over
	// the tables does not spill pages to the WAL before it commits, and
	// keeps statement journals in memory.
	wdb, err = sql.Open("sqlite", path+"?"+pragmas+"&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		return nil, nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	rdb, err = sql.Open("sqlite", path+"?"+pragmas+"&_pragma=query_only(1)"+strings.Join(readerPragmas, ""))
	if err != nil {
		wdb.Close()
		return nil, nil, err
	}
	rdb.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
	rdb.SetMaxIdleConns(max(4, 2*runtime.GOMAXPROCS(0)))
	return wdb, rdb, nil
}

// AnalyticsPath is the file of a SQLite store's hit counters, beside the
// portal's: keylens.db's is keylens-analytics.db.
func AnalyticsPath(path string) string { return besidePath(path, "-analytics") }

// HitLogPath is the file of a SQLite store's hit log, beside the portal's:
// keylens.db's is keylens-hitlog.db.
func HitLogPath(path string) string { return besidePath(path, "-hitlog") }

func besidePath(path, suffix string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + suffix + ext
}

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// writeLock is the advisory lock every PostgreSQL portal write transaction
// holds (see begin); hit commits do not take it.
const writeLock = 0x6b65796c656e73 // "keylens"

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	wdb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	// One portal writer connection per process: portal writers queue in
	// Go, and the advisory lock orders them across processes.
	wdb.SetMaxOpenConns(1)
	rdb, err := sql.Open("pgx", dsn)
	if err != nil {
		wdb.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
	rdb.SetMaxIdleConns(max(4, 2*runtime.GOMAXPROCS(0)))
	rdb.SetConnMaxIdleTime(5 * time.Minute)
	// Hit commits have connections of their own, so that they never wait
	// for the portal writer's, nor it for theirs.
	hw, err := sql.Open("pgx", dsn)
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	hw.SetMaxOpenConns(hitWriters)
	hw.SetMaxIdleConns(hitWriters)
	hw.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{wdb: &pool{DB: wdb, pg: true, writer: true, name: "portal"}, rdb: &pool{DB: rdb, pg: true}, hw: &pool{DB: hw, pg: true, writer: true, name: "hit counters"},
		pg: true, dsn: dsn, Now: time.Now,
		KeyHashAlgorithm: keylens.DefaultHashAlgorithm, MaxRotationGrace: keylens.DefaultMaxRotationGrace, changed: newNotifier(),
		pollDown: changePollInterval, pollUp: listeningPollInterval}
	db.hr, db.lw, db.lr = db.rdb, db.hw, db.rdb
	db.wdb.db, db.rdb.db, db.hw.db = db, db, db
	if err := db.migrate(ctx, db.wdb, "migrations/postgres/*.sql"); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate PostgreSQL: %w", err)
	}
	return db, nil
}

// hitWriters is how many PostgreSQL connections a process commits hits on.
const hitWriters = 2

// pool is a connection pool whose queries are rebound for its database.
type pool struct {
	*sql.DB
	pg     bool
	db     *DB
	writer bool
	name   string // a writer's, for the log: "portal" or "hit counters"
	// full is set while a writer's writes fail for want of space, cleared
	// by its next write that commits; refused counts the writes refused
	// since it was set.
	full     atomic.Bool
	refused  atomic.Int64
	fullMu   sync.Mutex // orders the episode's first and last lines
	fullFrom time.Time

	prepared map[string]*sql.Stmt // by query; written only while opening
}

// prepare prepares queries once for the pool (database/sql prepares each
// again on every connection that runs it).
func (p *pool) prepare(ctx context.Context, queries ...string) error {
	p.prepared = make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		st, err := p.DB.PrepareContext(ctx, p.q(q))
		if err != nil {
			return err
		}
		p.prepared[q] = st
	}
	return nil
}

// queryRowPrepared runs query through its prepared statement, or as any
// query when it has none.
func (p *pool) queryRowPrepared(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.prepared[query]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.QueryRowContext(ctx, query, args...)
}

// Close closes the prepared statements and the pool.
func (p *pool) Close() error {
	for _, st := range p.prepared {
		st.Close()
	}
	return p.DB.Close()
}

func (p *pool) store() *DB { return p.db }

func (p *pool) q(query string) string {
	if !p.pg {
		return query
	}
	return rebind(query)
}

// ExecContext runs query, rebound for the pool's database.
func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := p.DB.ExecContext(ctx, p.q(query), args...)
	if err == nil && p.writer {
		p.wrote()
	}
	return res, p.storageError(err)
}

// QueryContext runs query, rebound for the pool's database.
func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.DB.QueryContext(ctx, p.q(query), args...)
}

// QueryRowContext runs query, rebound for the pool's database.
func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.DB.QueryRowContext(ctx, p.q(query), args...)
}

// beginTx starts a transaction. On PostgreSQL a pooled connection that the
// server dropped (a restart, a failover) fails its BEGIN once and is then
// discarded; beginning again takes a fresh one, so that the first request
// after a database restart does not fail. Nothing ran, so it is safe.
func (p *pool) beginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	tx, err := p.DB.BeginTx(ctx, opts)
	if err != nil && p.pg && ctx.Err() == nil {
		tx, err = p.DB.BeginTx(ctx, opts)
	}
	return tx, err
}

// q rebinds a query for the store's database.
func (db *DB) q(query string) string { return db.wdb.q(query) }

// rebind turns ? placeholders (outside quoted strings) into PostgreSQL's
// $1, $2, ….
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
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

// Close closes the pools.
func (db *DB) Close() error {
	db.stopCompactor()
	db.stopListening()
	err := errors.Join(db.wdb.Close(), db.rdb.Close(), db.hw.Close())
	if !db.pg {
		err = errors.Join(err, db.hr.Close(), db.lw.Close(), db.lr.Close())
	}
	return err
}

// Ping checks that the store answers, for health checks: EFULL while
// writes fail for want of space.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.rdb.PingContext(ctx); err != nil {
		return err
	}
	if db.wdb.full.Load() || db.hw.full.Load() || db.lw.full.Load() {
		return errFull
	}
	return nil
}

var errFull = keylens.Errorf(keylens.EFULL, "The store is out of space: writes fail until space is freed")

// storageError turns a write that failed for want of space (SQLite's
// SQLITE_FULL, PostgreSQL's disk_full, a full disk) into EFULL and notes
// it for Ping; other errors pass as they are.
func (p *pool) storageError(err error) error {
	if err == nil || p == nil || !p.writer {
		return err
	}
	var se *sqlite.Error
	var pe *pgconn.PgError
	full := errors.Is(err, syscall.ENOSPC) ||
		(errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL) ||
		(errors.As(err, &pe) && (pe.Code == "53100" || pe.Code == "53000"))
	if !full {
		return err
	}
	p.refused.Add(1)
	if !p.full.Load() {
		p.fullMu.Lock()
		if !p.full.Load() {
			p.full.Store(true)
			p.fullFrom = time.Now()
			p.db.logger().Error("the store is out of space: writes are refused (507) until space is freed", "file", p.name, "err", err)
		}
		p.fullMu.Unlock()
	}
	return errFull
}

// wrote notes a write of the writer p that succeeded: the end of a full
// store, if it was.
func (p *pool) wrote() {
	if !p.full.Load() {
		return
	}
	p.fullMu.Lock()
	defer p.fullMu.Unlock()
	if p.full.Load() {
		p.full.Store(false)
		p.db.logger().Info("the store has space again", "file", p.name, "refused_writes", p.refused.Swap(0),
			"after", time.Since(p.fullFrom).Round(time.Millisecond))
	}
}

func (db *DB) logger() *slog.Logger {
	if db.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return db.Logger
}

// migrate applies, in name order, every embedded migration of dir not yet
// recorded in the schema_migrations of w's database, each in its own
// transaction.
func (db *DB) migrate(ctx context.Context, w *pool, dir string) error {
	if db.pg {
		// Processes starting at once migrate one at a time. The writer
		// pool's one connection holds the lock until it is released.
		if _, err := w.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, writeLock+1); err != nil {
			return err
		}
		defer w.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, writeLock+1)
	}
	if _, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, dir)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.migrateFile(ctx, w, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// migrateFile applies one migration. Not through db.write: the migration
// body runs as written (write's Tx would rebind its ?, which PostgreSQL
// SQL may use as an operator), and on PostgreSQL the caller already holds
// the migrations' session lock (writeLock+1) on the writer's only
// connection, before any service call can write.
func (db *DB) migrateFile(ctx context.Context, w *pool, name string) error {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM schema_migrations WHERE name = ?`), name).Scan(&n); err != nil {
		return err
	} else if n > 0 {
		return nil
	}
	body, err := fs.ReadFile(migrations, name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (name) VALUES (?)`), name); err != nil {
		return err
	}
	return tx.Commit()
}

// Tx wraps a transaction with the time it started, so that every row a
// service call writes carries the same instant.
type Tx struct {
	*sql.Tx
	db      *DB
	w       *pool // the writer it runs on; nil for a read
	now     time.Time
	changed bool // the change feed grew: wake its readers on commit
}

// Commit commits and wakes change-feed readers if the feed grew.
func (tx *Tx) Commit() error {
	if err := tx.Tx.Commit(); err != nil {
		return tx.w.storageError(err)
	}
	if tx.w != nil {
		tx.w.wrote()
	}
	if tx.changed {
		tx.db.changed.broadcast()
	}
	return nil
}

// begin starts a portal write transaction, serialised: BEGIN IMMEDIATE on
// SQLite, the write advisory lock on PostgreSQL. The lock is what portal
// writes' consistency needs there, under READ COMMITTED: change-feed
// sequence numbers (a serial) must commit in their order, or a reader
// past a later one would never see an earlier one that committed after
// it; and portal writes check what they change before changing it (an
// email in use, the catalogue unchanged since the form was read, a
// request not yet approved), as SQLite's one writer lets them. It is
// taken first, before any row lock, so that it cannot join a deadlock.
// Hit commits do not take it (beginHits).
func (db *DB) begin(ctx context.Context) (*Tx, error) {
	tx, err := db.wdb.beginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if db.pg {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLock); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	return &Tx{Tx: tx, db: db, w: db.wdb, now: db.Now()}, nil
}

// writeOn runs fn in a transaction on the writer w (the hit counters' or
// the hit log's) and commits when fn returns nil. It takes no lock beyond
// what it writes: on SQLite each of these files has its own writer; on
// PostgreSQL both are one pool whose transactions take no advisory lock (a
// commit appends to the hit log; concurrent compactions take disjoint rows
// of it and upsert counters in primary-key order, so that they wait for
// each other row by row and never deadlock).
func (db *DB) writeOn(ctx context.Context, w *pool, fn func(tx *Tx) error) error {
	t, err := w.beginTx(ctx, nil)
	if err != nil {
		return err
	}
	tx := &Tx{Tx: t, db: db, w: w, now: db.Now()}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (tx *Tx) store() *DB { return tx.db }

// ExecContext runs query in the transaction, rebound for its database.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := tx.Tx.ExecContext(ctx, tx.db.q(query), args...)
	return res, tx.w.storageError(err)
}

// QueryContext runs query in the transaction, rebound for its database.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.db.q(query), args...)
}

// QueryRowContext runs query in the transaction, rebound for its database.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.db.q(query), args...)
}

// queryPrepared runs query in the transaction through the read pool's
// statement prepared for it (database/sql keeps one per connection), or as
// any query when it has none.
func (tx *Tx) queryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := tx.db.rdb.prepared[query]; st != nil {
		return tx.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// queryRowPrepared is queryPrepared for one row.
func (tx *Tx) queryRowPrepared(ctx context.Context, query string, args ...any) *sql.Row {
	if st := tx.db.rdb.prepared[query]; st != nil {
		return tx.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// PrepareContext prepares query in the transaction, rebound for its
// database.
func (tx *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return tx.Tx.PrepareContext(ctx, tx.db.q(query))
}

// beginRead starts a read-only transaction on the reader pool, for calls
// that need several queries to see one snapshot.
func (db *DB) beginRead(ctx context.Context) (*Tx, error) {
	var opts *sql.TxOptions
	if db.pg {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	tx, err := db.rdb.beginTx(ctx, opts)
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
		return "", keylens.Errorf(keylens.ENOTFOUND, "Setting %s is not set", name)
	}
	return v, err
}

// InitSetting sets name unless set and returns the value in effect.
func (db *DB) InitSetting(ctx context.Context, name, value string) (string, error) {
	var v string
	err := db.write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	})
	if err != nil {
		return "", err
	}
	return v, nil
}

// PutSetting sets name to value.
func (db *DB) PutSetting(ctx context.Context, name, value string) error {
	_, err := db.wdb.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

// OrgID returns the portal's org id, creating it on first use.
func (db *DB) OrgID(ctx context.Context) (string, error) {
	return db.InitSetting(ctx, keylens.SettingOrgID, keylens.NewObjectID(db.Now()))
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
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

// unixTime is Unix seconds as a time, the zero time for 0.
func unixTime(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
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

// anys is vs as a statement's arguments.
func anys[T any](vs []T) []any {
	args := make([]any, len(vs))
	for i, v := range vs {
		args[i] = v
	}
	return args
}

// write runs fn in a write transaction (see begin) and commits when fn
// returns nil; any error rolls it back.
func (db *DB) write(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Lock ids of the work one process of a store does at a time (after
// writeLock and the migrations' writeLock+1).
const (
	LockTykOutbox = writeLock + 2
)

// Exclusive runs fn while this process holds lock among all the processes
// of the store, waiting until it does; it returns when fn does or ctx
// ends. On PostgreSQL the lock is a session advisory lock on a connection
// of its own, checked every few seconds: if that connection is lost (so is
// the lock, and another process may take it), fn's context ends. On SQLite
// fn runs at once: its processes share one file on one machine, and
// keylens runs one writer of a file.
func (db *DB) Exclusive(ctx context.Context, lock int64, fn func(ctx context.Context)) {
	if !db.pg {
		fn(ctx)
		return
	}
	for ctx.Err() == nil {
		if db.holdExclusive(ctx, lock, fn) {
			return
		}
		select { // not held, or the connection failed: try again
		case <-ctx.Done():
		case <-time.After(exclusiveRetry):
		}
	}
}

// exclusiveRetry is how often a process waiting for an exclusive lock asks
// again, and how often the holder checks its connection.
var exclusiveRetry = 2 * time.Second

// holdExclusive tries lock once; when it gets it, it runs fn under it and
// reports true, unless fn ended because the lock was lost.
func (db *DB) holdExclusive(ctx context.Context, lock int64, fn func(ctx context.Context)) bool {
	conn, err := db.rdb.DB.Conn(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	var held bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, lock).Scan(&held); err != nil || !held {
		return false
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var lost atomic.Bool
	go func() { // the lock lives as long as the connection
		defer close(done)
		for {
			select {
			case <-fctx.Done():
				return
			case <-time.After(exclusiveRetry):
				if err := conn.PingContext(fctx); err != nil && fctx.Err() == nil {
					lost.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	fn(fctx)
	cancel()
	<-done
	_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lock)
	return !lost.Load()
}
