package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// hitLogStores opens a fresh store of each kind.
func hitLogStores(t *testing.T) map[string]func(t *testing.T) (*sqlstore.DB, string) {
	return map[string]func(t *testing.T) (*sqlstore.DB, string){
		"SQLite": func(t *testing.T) (*sqlstore.DB, string) {
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "keylens.db")
			return openDSN(t, dsn), dsn
		},
		"PostgreSQL": func(t *testing.T) (*sqlstore.DB, string) {
			dsn := pgtest.Shared(t).NewDatabase(t)
			return openDSN(t, dsn), dsn
		},
	}
}

func openDSN(t *testing.T, dsn string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// commit commits batches to db, failing the test if it cannot.
func commit(t testing.TB, db *sqlstore.DB, batches ...keylens.HitBatch) {
	t.Helper()
	if _, err := db.AddHits(context.Background(), batches); err != nil {
		t.Fatal(err)
	}
}

// stopped opens a store with open, its compactor stopped: the test folds
// the log itself (sqlstore.CompactHits).
func stopped(t *testing.T, open func(t *testing.T) (*sqlstore.DB, string)) *sqlstore.DB {
	t.Helper()
	db, _ := open(t)
	sqlstore.StopCompactor(db)
	return db
}

// hitBatch is n series of keys k0…k(keys-1) on two APIs, over three hours
// of a day and the next day's first, at two codes.
func hitBatch(id string, n, keys int) keylens.HitBatch {
	b := keylens.HitBatch{ID: id}
	base := int64(490000) // a day's first hour (divisible by 24)
	for i := range n {
		code := 200
		if i%5 == 0 {
			code = 500
		}
		d := keylens.HitDelta{KeyHash: fmt.Sprintf("k%d", i%keys), APIID: fmt.Sprint("api", i%2), Hour: base + int64([]int{0, 5, 23, 24}[i%4]),
			Code: code, Hits: int64(1 + i%3), LastHit: (base*3600 + int64(i)) * 1e9, LatencyUS: int64(100 * (1 + i%3)), LatencyCount: int64(1 + i%3)}
		if code < 400 {
			d.Success = d.Hits
		} else {
			d.Errors = d.Hits
		}
		b.Series = append(b.Series, d)
	}
	return b
}

// hitQueries are the queries the tests compare: every resolution, by code
// or not, some keys, one API.
func hitQueries() []keylens.HitQuery {
	from, to := time.Unix(490000*3600, 0).UTC(), time.Unix(490048*3600, 0).UTC()
	var qs []keylens.HitQuery
	for _, res := range []string{keylens.ResHour, keylens.ResDay, keylens.ResMonth} {
		for _, byCode := range []bool{false, true} {
			qs = append(qs, keylens.HitQuery{Keys: []string{"k0", "k3", "k7"}, From: from, To: to, Res: res, ByCode: byCode},
				keylens.HitQuery{Keys: []string{"k1"}, From: from.Add(2 * time.Hour), To: to, Res: res, ByCode: byCode, APIIDs: []string{"api1"}})
		}
	}
	return qs
}

func queryAll(t *testing.T, db *sqlstore.DB) string {
	t.Helper()
	var out string
	for _, q := range hitQueries() {
		rows, err := db.QueryHits(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%+v\n", rows)
	}
	return out
}

// compactAndCompare folds db's whole hit log, checks that it folded
// series logged series and left the log empty, and that queries then
// answer want.
func compactAndCompare(t *testing.T, db *sqlstore.DB, series int, want string) {
	t.Helper()
	ctx := context.Background()
	if n, err := sqlstore.CompactHits(ctx, db); err != nil || n != series {
		t.Fatalf("compaction folded %d series (%v), want %d", n, err, series)
	}
	if n, _ := sqlstore.HitLogSeries(ctx, db); n != 0 {
		t.Errorf("the log holds %d series after compaction", n)
	}
	if got := queryAll(t, db); got != want {
		t.Errorf("after compaction:\n%s\nwant:\n%s", got, want)
	}
}

// TestHitLogCountsOnceBeforeAndAfterCompaction: hits committed to the log
// answer every query as they do once folded into the counters, and as the
// counters answer alone: a compaction moves counts, never adds or loses
// them.
func TestHitLogCountsOnceBeforeAndAfterCompaction(t *testing.T) {
	for name, open := range hitLogStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			// Folded at once: the reference.
			ref := stopped(t, open)
			for i := range 6 {
				commit(t, ref, hitBatch(fmt.Sprint("b", i), 900, 11))
				if _, err := sqlstore.CompactHits(ctx, ref); err != nil {
					t.Fatal(err)
				}
			}
			want := queryAll(t, ref)

			db := stopped(t, open)
			for i := range 3 {
				commit(t, db, hitBatch(fmt.Sprint("b", i), 900, 11))
			}
			if _, err := sqlstore.CompactHits(ctx, db); err != nil { // half folded
				t.Fatal(err)
			}
			for i := 3; i < 6; i++ {
				commit(t, db, hitBatch(fmt.Sprint("b", i), 900, 11))
			}
			if n, _ := sqlstore.HitLogSeries(ctx, db); n != 2700 || db.HitBacklog() != 2700 {
				t.Fatalf("the log holds %d series (backlog %d), want 2700", n, db.HitBacklog())
			}
			if got := queryAll(t, db); got != want {
				t.Errorf("half in the log:\n%s\nwant (all folded):\n%s", got, want)
			}
			compactAndCompare(t, db, 2700, want)
		})
	}
}

// TestHitLogCompactorRuns: the store folds its log by itself, and counts
// its backlog.
func TestHitLogCompactorRuns(t *testing.T) {
	for name, open := range hitLogStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db, _ := open(t)
			commit(t, db, hitBatch("b", 20000, 3000))
			deadline := time.Now().Add(30 * time.Second)
			for {
				n, err := sqlstore.HitLogSeries(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 && db.HitBacklog() == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30 s the log still holds %d series (backlog %d)", n, db.HitBacklog())
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestConcurrentCompactions_PostgreSQL: processes sharing a database fold
// its log together, each taking rows the others are not folding, while
// commits go on; every hit is counted exactly once.
func TestConcurrentCompactions_PostgreSQL(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Shared(t).NewDatabase(t)
	ref := openDSN(t, "sqlite:"+filepath.Join(t.TempDir(), "keylens.db"))
	sqlstore.StopCompactor(ref)
	var dbs []*sqlstore.DB
	for range 3 {
		dbs = append(dbs, openDSN(t, dsn))
	}
	var wg sync.WaitGroup
	for w, db := range dbs {
		wg.Go(func() {
			for i := range 15 {
				b := hitBatch(fmt.Sprintf("w%d-%d", w, i), 1500, 40)
				if _, err := db.AddHits(ctx, []keylens.HitBatch{b}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for w := range dbs {
		for i := range 15 {
			commit(t, ref, hitBatch(fmt.Sprintf("w%d-%d", w, i), 1500, 40))
		}
	}
	wg.Wait()
	deadline := time.Now().Add(60 * time.Second)
	for n, _ := sqlstore.HitLogSeries(ctx, dbs[0]); n > 0; n, _ = sqlstore.HitLogSeries(ctx, dbs[0]) {
		if time.Now().After(deadline) {
			t.Fatalf("the log still holds %d series after 60 s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := queryAll(t, ref)
	for i, db := range dbs {
		if got := queryAll(t, db); got != want {
			t.Errorf("process %d reads:\n%s\nwant:\n%s", i, got, want)
		}
	}
}

// TestHitLogFoldedButNotDeleted_SQLite: keylens stopped after a compaction
// committed its counters and before it deleted the rows from the log's
// file: after a restart the rows left are not counted again, by queries or
// by the next compaction, which deletes them.
func TestHitLogFoldedButNotDeleted_SQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keylens.db")
	db := openSQLite(t, path)
	sqlstore.StopCompactor(db)
	for i := range 3 {
		commit(t, db, hitBatch(fmt.Sprint("b", i), 900, 11))
	}
	raw, err := sql.Open("sqlite", sqlstore.HitLogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	type row struct {
		seq, series int64
		data        []byte
	}
	var saved []row
	rows, err := raw.Query(`SELECT seq, series, data FROM hit_log`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.series, &r.data); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, r)
	}
	rows.Close()
	want := queryAll(t, db)
	if n, err := sqlstore.CompactHits(ctx, db); err != nil || n != 2700 {
		t.Fatalf("compaction folded %d series (%v), want 2700", n, err)
	}
	for _, r := range saved { // as if the delete had not happened
		if _, err := raw.Exec(`INSERT INTO hit_log (seq, series, data) VALUES (?, ?, ?)`, r.seq, r.series, r.data); err != nil {
			t.Fatal(err)
		}
	}
	// keylens stopped there and starts again.
	db.Close()
	db = openSQLite(t, path)
	sqlstore.StopCompactor(db)
	if got := queryAll(t, db); got != want {
		t.Errorf("with folded rows left in the log:\n%s\nwant:\n%s", got, want)
	}
	compactAndCompare(t, db, 0, want)
}

// TestHitCommitsDoNotWaitForCompactions_SQLite: while the counters' file
// is held by a writer (a compaction under way), hits still commit: the
// log has a file and a writer of its own.
func TestHitCommitsDoNotWaitForCompactions_SQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keylens.db")
	db := openSQLite(t, path)
	raw, err := sql.Open("sqlite", sqlstore.AnalyticsPath(path)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer raw.Exec(`ROLLBACK`)
	// A commit that queued behind the counters' writer would wait out
	// SQLite's busy timeout (10 s) and fail.
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := db.AddHits(hctx, []keylens.HitBatch{hitBatch("b", 100, 7)}); err != nil {
		t.Errorf("a hit commit while the counters' file is held: %v", err)
	}
}

// BenchmarkQueryWithBacklog: a query of 10 keys at res=day while the hit
// log holds as many series not yet folded as the committer allows
// (analytics.DefaultMaxBacklog), in commits of 10,000 series (one of a key
// in every commit, the others of new keys): every query reads every row's
// key filter, and the rows that may hold its keys: a few for 10 new keys,
// a tenth for 100 (false positives), all for the key in every commit.
//
//	go test -run=NONE -bench=QueryWithBacklog -benchtime=20x ./sqlstore/
func BenchmarkQueryWithBacklog(b *testing.B) {
	for _, name := range []string{"SQLite", "PostgreSQL"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var dsn string
			if name == "SQLite" {
				dsn = "sqlite:" + filepath.Join(b.TempDir(), "keylens.db")
			} else {
				dsn = pgtest.Shared(b).NewDatabase(b)
			}
			db, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			sqlstore.StopCompactor(db)
			hour := time.Now().Unix() / 3600
			key := func(i int) string { return fmt.Sprintf("%064x", i) }
			const hot = "hot" // in every commit, as a busy key of a fleet is
			for c := range analytics.DefaultMaxBacklog / 10000 {
				batch := keylens.HitBatch{ID: fmt.Sprint("b", c)}
				for i := range 10000 {
					k := key(c*10000 + i)
					if i == 0 {
						k = hot
					}
					batch.Series = append(batch.Series, keylens.HitDelta{KeyHash: k, APIID: "api", Hour: hour,
						Code: 200, Hits: 1, Success: 1, LastHit: hour * 3600e9})
				}
				commit(b, db, batch)
			}
			for _, c := range []struct {
				name string
				keys []string
				hits int64
			}{
				{"10-keys", nil, 10},
				{"100-keys", nil, 100},
				{"a-key-in-every-row", []string{hot}, analytics.DefaultMaxBacklog / 10000},
			} {
				if c.keys == nil {
					for i := range c.hits {
						c.keys = append(c.keys, key(int(i+1)*99991)) // none a multiple of 10,000: none the hot key's place
					}
				}
				b.Run(c.name, func(b *testing.B) {
					q := keylens.HitQuery{Keys: c.keys, From: time.Now().AddDate(0, 0, -30), To: time.Now().Add(time.Hour), Res: keylens.ResDay}
					for range b.N {
						rows, err := db.QueryHits(ctx, q)
						if err != nil || len(rows) != 1 || rows[0].Hits != c.hits {
							b.Fatalf("%+v, %v", rows, err)
						}
					}
				})
			}
		})
	}
}

// BenchmarkCompaction: how fast the compactor folds the hit log into the
// counters, the rate a flood is absorbed at once the log is at the
// committer's limit. "distinct": 200,000 series of new keys (a flood);
// "fleet": 1,000,000 logged series that are 5 seconds of 100 gateways'
// 2,000 keys each (200,000 distinct series, every one logged 5 times).
//
//	go test -run=NONE -bench=Compaction -benchtime=2x ./sqlstore/
func BenchmarkCompaction(b *testing.B) {
	for _, name := range []string{"SQLite", "PostgreSQL"} {
		for _, shape := range []struct {
			name          string
			commits, keys int
		}{{"distinct", 20, 0}, {"fleet", 100, 200000}} {
			b.Run(name+"/"+shape.name, func(b *testing.B) {
				ctx := context.Background()
				var dsn string
				if name == "SQLite" {
					dsn = "sqlite:" + filepath.Join(b.TempDir(), "keylens.db")
				} else {
					dsn = pgtest.Shared(b).NewDatabase(b)
				}
				db, err := sqlstore.Open(ctx, dsn)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				sqlstore.StopCompactor(db)
				hour := time.Now().Unix() / 3600
				logged, next := 0, 0
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					for c := range shape.commits {
						batch := keylens.HitBatch{ID: fmt.Sprint("b", next, "-", c)}
						for i := range 10000 {
							k := next*10000 + i
							if shape.keys > 0 {
								k = (c*10000 + i) % shape.keys
							}
							batch.Series = append(batch.Series, keylens.HitDelta{KeyHash: strings.Repeat(fmt.Sprintf("%016x", uint64(k)*0x9e3779b97f4a7c15), 4), APIID: "api", Hour: hour,
								Code: 200, Hits: 1, Success: 1, LastHit: hour * 3600e9})
						}
						next++
						commit(b, db, batch)
					}
					b.StartTimer()
					n, err := sqlstore.CompactHits(ctx, db)
					if err != nil {
						b.Fatal(err)
					}
					logged += n
				}
				b.ReportMetric(float64(logged)/b.Elapsed().Seconds(), "logged-series/s")
			})
		}
	}
}

// TestHitLogRestoredFromBackup_SQLite: the three files backed up as the
// README says (the log before the counters) while a compaction folds
// between the two backups, then restored: the counters' `through` is past
// every seq the restored log has handed out, and hits committed after the
// restore must still count.
func TestHitLogRestoredFromBackup_SQLite(t *testing.T) {
	ctx := context.Background()
	dir, bak := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "keylens.db")
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	sqlstore.StopCompactor(db)
	backup := func(file string) {
		raw, err := sql.Open("sqlite", file)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`VACUUM INTO ?`, filepath.Join(bak, filepath.Base(file))); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, db, hitBatch("b0", 100, 7))
	backup(path)
	backup(sqlstore.HitLogPath(path))
	// Commits and a compaction between the log's backup and the counters'.
	for i := 1; i <= 3; i++ {
		commit(t, db, hitBatch(fmt.Sprint("b", i), 100, 7))
	}
	if _, err := sqlstore.CompactHits(ctx, db); err != nil {
		t.Fatal(err)
	}
	backup(sqlstore.AnalyticsPath(path))
	db.Close()

	// Restored: the reference is a fresh store given the same four
	// batches, and then one more after the restore.
	restored := filepath.Join(t.TempDir(), "keylens.db")
	for _, f := range []string{restored, sqlstore.HitLogPath(restored), sqlstore.AnalyticsPath(restored)} {
		data, err := os.ReadFile(filepath.Join(bak, filepath.Base(strings.Replace(f, filepath.Dir(restored), dir, 1))))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db = openSQLite(t, restored)
	sqlstore.StopCompactor(db) // this test compacts
	ref := openSQLite(t, filepath.Join(t.TempDir(), "keylens.db"))
	for i := range 5 {
		commit(t, ref, hitBatch(fmt.Sprint("b", i), 100, 7))
	}
	commit(t, db, hitBatch("b4", 100, 7))
	want := queryAll(t, ref)
	if got := queryAll(t, db); got != want {
		t.Errorf("a commit after the restore, just committed:\n%s\nwant:\n%s", got, want)
	}
	if _, err := sqlstore.CompactHits(ctx, db); err != nil {
		t.Fatal(err)
	}
	if got := queryAll(t, db); got != want {
		t.Errorf("a commit after the restore, once compacted:\n%s\nwant:\n%s", got, want)
	}
}

// TestDamagedHitLogRowIsSetAside: a log row that cannot be read stops
// neither queries nor compactions: its hits are not counted, the others'
// are, and the compaction that meets it keeps it in hit_log_damaged.
func TestDamagedHitLogRowIsSetAside(t *testing.T) {
	for name, open := range hitLogStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			ref := stopped(t, open)
			commit(t, ref, hitBatch("good", 900, 11))
			want := queryAll(t, ref)

			db := stopped(t, open)
			for _, id := range []string{"damaged", "good"} {
				commit(t, db, hitBatch(id, 900, 11))
			}
			// The first row's last record is cut short.
			if err := sqlstore.ExecHitLog(ctx, db, `UPDATE hit_log SET data = substr(data, 1, length(data) - 3) WHERE seq = (SELECT MIN(seq) FROM hit_log)`); err != nil {
				t.Fatal(err)
			}
			if got := queryAll(t, db); got != want {
				t.Errorf("with a damaged row in the log:\n%s\nwant the other row's hits:\n%s", got, want)
			}
			compactAndCompare(t, db, 900, want) // the readable row's
			if n, err := sqlstore.HitLogDamaged(ctx, db); err != nil || n != 1 {
				t.Errorf("%d rows set aside (%v), want 1", n, err)
			}
		})
	}
}

// TestQueriesReadTheLogRowsTheirKeysMayBeIn: a query reads the log rows
// whose key filter may hold its keys, and every row without a filter (as
// rows logged before filters are). Shown by giving a row another row's
// filter: its hits disappear from queries of its own key, and come back
// when the filter is gone.
func TestQueriesReadTheLogRowsTheirKeysMayBeIn(t *testing.T) {
	for name, open := range hitLogStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := stopped(t, open)
			hour := int64(490000)
			for _, key := range []string{"k1", "k2"} {
				commit(t, db, keyBatch(key, hour))
			}
			hits := func(key string) int64 { return keyHits(t, db, key, hour) }
			if a, b := hits("k1"), hits("k2"); a != 5 || b != 5 {
				t.Fatalf("k1 %d, k2 %d hits; want 5 each", a, b)
			}
			if err := sqlstore.ExecHitLog(ctx, db, `UPDATE hit_log SET keys = (SELECT keys FROM hit_log WHERE seq = (SELECT MIN(seq) FROM hit_log)) WHERE seq = (SELECT MAX(seq) FROM hit_log)`); err != nil {
				t.Fatal(err)
			}
			if a, b := hits("k1"), hits("k2"); a != 5 || b != 0 {
				t.Errorf("with k2's row filtered as k1's: k1 %d, k2 %d hits; want 5 and 0 (the row left unread)", a, b)
			}
			if err := sqlstore.ExecHitLog(ctx, db, `UPDATE hit_log SET keys = NULL`); err != nil {
				t.Fatal(err)
			}
			if a, b := hits("k1"), hits("k2"); a != 5 || b != 5 {
				t.Errorf("without filters: k1 %d, k2 %d hits; want 5 each", a, b)
			}
		})
	}
}

// keyHits is the hits of key a query answers, from the day before hour's
// to the day after.
func keyHits(t *testing.T, db *sqlstore.DB, key string, hour int64) int64 {
	t.Helper()
	return sumHits(t, db, keylens.HitQuery{Keys: []string{key}, Res: keylens.ResDay,
		From: time.Unix(hour*3600, 0).AddDate(0, 0, -1), To: time.Unix(hour*3600, 0).AddDate(0, 0, 1)})
}

// sumHits is the hits q's answer sums to.
func sumHits(t *testing.T, db *sqlstore.DB, q keylens.HitQuery) int64 {
	t.Helper()
	rows, err := db.QueryHits(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range rows {
		n += r.Hits
	}
	return n
}

// keyBatch is a batch (id key) of one series of key at hour: 5 hits.
func keyBatch(key string, hour int64) keylens.HitBatch {
	return keylens.HitBatch{ID: key, Series: []keylens.HitDelta{{KeyHash: key, APIID: "a", Hour: hour, Code: 200, Hits: 5, Success: 5, LastHit: hour * 3600e9}}}
}

// TestQueriesReadEveryLogRowOfTheirKeys: a log row's key filter holds the
// keys of every batch its commit took (the committer commits many
// together), and a query reads every row its keys may be in, however many
// statements that takes (hundreds of rows each).
func TestQueriesReadEveryLogRowOfTheirKeys(t *testing.T) {
	for name, open := range hitLogStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := stopped(t, open)
			hour := int64(490000)
			var batches []keylens.HitBatch
			for _, key := range []string{"k1", "k2", "k3"} {
				batches = append(batches, keyBatch(key, hour))
			}
			commit(t, db, batches...) // one commit, one row
			for _, key := range []string{"k1", "k2", "k3"} {
				if n := keyHits(t, db, key, hour); n != 5 {
					t.Errorf("%s: %d hits of one commit of three batches, want 5", key, n)
				}
			}
			// The row, doubled ten times: 1,024 rows of each key.
			for range 10 {
				if err := sqlstore.ExecHitLog(ctx, db, `INSERT INTO hit_log (series, keys, data) SELECT series, keys, data FROM hit_log`); err != nil {
					t.Fatal(err)
				}
			}
			for _, key := range []string{"k1", "k3"} {
				if n := keyHits(t, db, key, hour); n != 5*1024 {
					t.Errorf("%s: %d hits in 1,024 log rows, want %d", key, n, 5*1024)
				}
			}
		})
	}
}

// TestHitLogRebuildHandsNoSeqOutTwice_SQLite: the migration that rebuilt
// the log's table (0002) keeps its sequence, so that a seq is never handed
// out twice, even where the counters' `through` (what the start raises
// the sequence to) is behind the log: here the counters' file was lost
// after the log's ten rows were folded and deleted.
func TestHitLogRebuildHandsNoSeqOutTwice_SQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keylens.db")
	raw, err := sql.Open("sqlite", sqlstore.HitLogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const first = "migrations/sqlite-hitlog/0001_hit_log.sql" // the log's file before 0002
	schema, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{string(schema), `CREATE TABLE schema_migrations (name TEXT PRIMARY KEY)`, `INSERT INTO schema_migrations VALUES ('` + first + `')`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		if _, err := raw.Exec(`INSERT INTO hit_log (series, data) VALUES (0, x'01')`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(`DELETE FROM hit_log`); err != nil {
		t.Fatal(err)
	}
	db := openSQLite(t, path)
	sqlstore.StopCompactor(db)
	commit(t, db, hitBatch("b", 10, 3))
	var seq int64
	if err := raw.QueryRow(`SELECT seq FROM hit_log`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if seq <= 10 {
		t.Errorf("the first row after the rebuild has seq %d, handed out before", seq)
	}
}
