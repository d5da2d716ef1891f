package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// oldLayout gives the SQLite portal file at path the hit tables it had
// before the counters had a file of their own, holding 5 hits of key
// "0ld0ld00" and an applied batch "old-batch".
func oldLayout(t *testing.T, path string) {
	t.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	schema, err := os.ReadFile("migrations/sqlite/0003_hits.sql")
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Unix() / 3600
	for _, q := range []string{string(schema),
		fmt.Sprintf(`INSERT INTO hits_hourly VALUES ('0ld0ld00', %d, 'api', 200, 5, 5, 0, %d, 0, 0)`, hour, hour*3600e9),
		fmt.Sprintf(`INSERT INTO hits_daily VALUES ('0ld0ld00', %d, 'api', 200, 5, 5, 0, %d, 0, 0)`, hour/24, hour*3600e9),
		fmt.Sprintf(`INSERT INTO hit_batches VALUES ('old-batch', %d)`, time.Now().Unix()),
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func oldHits(t *testing.T, db *sqlstore.DB, res string) int64 {
	t.Helper()
	return sumHits(t, db, keylens.HitQuery{Keys: []string{"0ld0ld00"}, From: time.Now().Add(-48 * time.Hour), To: time.Now().Add(time.Hour), Res: res})
}

// TestHitCountersMoveToTheirOwnFile: a SQLite portal file from before the
// counters had a file of their own keeps its counters on upgrade: they are
// moved into the analytics file beside it, once, and the portal file's
// tables go. A start that finds the tables again after the move (a crash
// between the copy and the drop) drops them without counting them twice;
// batch ids applied before are still known.
func TestHitCountersMoveToTheirOwnFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keylens.db")
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	// Upgrading from the old layout: the analytics file does not exist.
	for _, f := range []string{"", "-wal", "-shm"} {
		os.Remove(sqlstore.AnalyticsPath(path) + f)
	}
	oldLayout(t, path)
	for round, what := range []string{"upgrade", "crash between copy and drop", "restart"} {
		db = openSQLite(t, path)
		if h, d := oldHits(t, db, keylens.ResHour), oldHits(t, db, keylens.ResDay); h != 5 || d != 5 {
			t.Fatalf("%s: %d hourly and %d daily hits of the old file's 5", what, h, d)
		}
		applied, err := db.AddHits(ctx, []keylens.HitBatch{{ID: "old-batch", Series: []keylens.HitDelta{{KeyHash: "0ld0ld00", APIID: "api", Hour: time.Now().Unix() / 3600, Code: 200, Hits: 1, Success: 1}}}})
		if err != nil || applied[0] {
			t.Fatalf("%s: a batch applied before the move was applied again (%v, %v)", what, applied, err)
		}
		var tables int
		if err := db.RawQueryRow(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name IN ('hits_hourly', 'hits_daily', 'hit_batches')`).Scan(&tables); err != nil || tables != 0 {
			t.Fatalf("%s: the portal file still has %d hit tables (%v)", what, tables, err)
		}
		db.Close()
		if round == 0 {
			oldLayout(t, path) // as if the drop had not happened
		}
	}
	if _, err := os.Stat(sqlstore.AnalyticsPath(path)); err != nil || sqlstore.AnalyticsPath(path) != filepath.Join(filepath.Dir(path), "keylens-analytics.db") {
		t.Errorf("analytics file %s: %v", sqlstore.AnalyticsPath(path), err)
	}
}

// TestHitCommitsAndPortalWritesDoNotQueue_SQLite: with the portal file's
// writer held by another connection, hits still commit; with the analytics
// file's held, portal writes still commit.
func TestHitCommitsAndPortalWritesDoNotQueue_SQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keylens.db")
	db := openSQLite(t, path)
	hold := func(file string) func() {
		raw, err := sql.Open("sqlite", file+"?_pragma=busy_timeout(10000)") // a compaction may hold it a moment
		if err != nil {
			t.Fatal(err)
		}
		raw.SetMaxOpenConns(1)
		if _, err := raw.Exec(`BEGIN IMMEDIATE`); err != nil {
			t.Fatal(err)
		}
		return func() {
			raw.Exec(`ROLLBACK`)
			raw.Close()
		}
	}
	release := hold(path)
	// A hit commit that queued behind the portal's writer would wait out
	// SQLite's busy timeout (10 s) and fail.
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := db.AddHits(hctx, []keylens.HitBatch{{ID: "b", Series: []keylens.HitDelta{{KeyHash: "add2b342", APIID: "a", Hour: 1, Code: 200, Hits: 1, Success: 1}}}}); err != nil {
		t.Errorf("a hit commit while a portal write holds the portal file: %v", err)
	}
	cancel()
	release()
	release = hold(sqlstore.AnalyticsPath(path))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := db.CreateDeveloper(pctx, &keylens.Developer{Email: "busy@example.com"}); err != nil {
		t.Errorf("a portal write while a hit commit holds the analytics file: %v", err)
	}
	cancel()
	release()
}

// TestHitCommitsTakeNoPortalLock_PostgreSQL: with the portal writers'
// advisory lock held by another session (a portal write in another
// process), hits still commit, while a portal write waits for it.
func TestHitCommitsTakeNoPortalLock_PostgreSQL(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Shared(t).NewDatabase(t)
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, sqlstore.WriteLock); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := db.AddHits(hctx, []keylens.HitBatch{{ID: "b", Series: []keylens.HitDelta{{KeyHash: "add2b342", APIID: "a", Hour: 1, Code: 200, Hits: 1, Success: 1}}}}); err != nil {
		t.Errorf("a hit commit while another process holds the portal write lock: %v", err)
	}
	// The portal's own writes still take the lock: this one cannot
	// commit until it is released.
	pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer pcancel()
	if err := db.CreateDeveloper(pctx, &keylens.Developer{Email: "waits@example.com"}); err == nil {
		t.Error("a portal write committed while another process held the portal write lock")
	}
}
