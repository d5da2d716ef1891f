package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/pgtest"
	"github.com/keylens/keylens/sqlstore/storetest"
)

func openSQLite(t *testing.T, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The conformance suites run with the change feed's polls an hour apart:
// a waiting reader must be woken by the commit itself.

func TestConformance_SQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		db := openSQLite(t, filepath.Join(t.TempDir(), "keylens.db"))
		sqlstore.SetPollIntervals(db, time.Hour, time.Hour)
		return db
	})
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "keylens.db")
	db := openSQLite(t, path)
	d := &keylens.Developer{Email: "keep@example.com", Password: "password1", Keys: map[string][]string{"aaaabbbb": {"p"}}}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	org, err := db.OrgID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openSQLite(t, path) // migrations run again: must be a no-op
	got, err := db.FindDeveloperByID(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Keys["aaaabbbb"] == nil || !keylens.CheckPassword(got.PasswordHash, "password1") {
		t.Errorf("after reopen: %+v", got)
	}
	if org2, _ := db.OrgID(ctx); org2 != org || got.OrgID != org {
		t.Errorf("org id changed across reopen: %q, %q, developer %q", org, org2, got.OrgID)
	}
}

func TestOpenRejectsUnusableDSNs(t *testing.T) {
	for _, dsn := range []string{"mysql://x", "sqlite:", "sqlite::memory:", "sqlite:/tmp/a?b.db", "sqlite:file:x.db"} {
		if db, err := sqlstore.Open(context.Background(), dsn); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

func TestConformance_PostgreSQL(t *testing.T) {
	cluster := pgtest.Shared(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		db, err := sqlstore.Open(context.Background(), cluster.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		sqlstore.SetPollIntervals(db, time.Hour, time.Hour)
		return db
	})
}

// TestMain hashes the tests' passwords at bcrypt's lowest cost, through
// the process setting --bcrypt-cost sets.
func TestMain(m *testing.M) {
	if err := keylens.SetBcryptCost(bcrypt.MinCost); err != nil {
		panic(err)
	}
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// TestPostgreSQLConcurrentStarts opens one fresh database from several
// stores at once, as a fleet starting together does: the migrations run
// once and every store comes up.
func TestPostgreSQLConcurrentStarts(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	errs := make(chan error, 6)
	for range 6 {
		go func() {
			db, err := sqlstore.Open(context.Background(), dsn)
			if err == nil {
				_, err = db.OrgID(context.Background())
				db.Close()
			}
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orgs := map[string]bool{}
	for range 3 {
		org, _ := db.OrgID(context.Background())
		orgs[org] = true
	}
	if len(orgs) != 1 {
		t.Errorf("concurrent starts made %d org ids", len(orgs))
	}
}

// TestPostgreSQLNotifiesOtherProcesses: a change committed through one
// store wakes a reader waiting on another store of the same database (as
// in another process) through LISTEN/NOTIFY. Each change commits only once
// the reader waits (OnParked) with its listener up; the reader's polls are
// an hour apart and its wait 30 s, so only the notification can end the
// wait before the test's deadline.
func TestPostgreSQLNotifiesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Shared(t).NewDatabase(t)
	open := func() *sqlstore.DB {
		db, err := sqlstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	writer, reader := open(), open()
	sqlstore.SetPollIntervals(reader, time.Hour, time.Hour)
	parked := make(chan struct{}, 1)
	sqlstore.OnParked(reader, func() {
		select {
		case parked <- struct{}{}:
		default:
		}
	})
	last, _ := reader.LastChange(ctx)
	if _, _, err := reader.WaitForChanges(ctx, last, 10, 0); err != nil { // starts the listener
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !sqlstore.Listening(reader); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reader's listener did not come up")
		}
	}
	for i := range 3 {
		select { // a signal left by an earlier reader, since returned
		case <-parked:
		default:
		}
		type result struct {
			changes []keylens.Change
			err     error
		}
		done := make(chan result, 1)
		go func() {
			changes, _, err := reader.WaitForChanges(ctx, last, 10, 30*time.Second)
			done <- result{changes, err}
		}()
		select {
		case <-parked:
		case r := <-done:
			t.Fatalf("#%d: the reader returned %+v, %v before any change", i, r.changes, r.err)
		case <-time.After(20 * time.Second):
			t.Fatalf("#%d: the reader never waited", i)
		}
		if err := writer.CreateDeveloper(ctx, &keylens.Developer{Email: fmt.Sprintf("n%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
		want, _ := writer.LastChange(ctx)
		select {
		case r := <-done:
			if r.err != nil || len(r.changes) != 1 || r.changes[0].Seq != want {
				t.Fatalf("#%d: the woken reader got %+v, %v; want change %d", i, r.changes, r.err, want)
			}
			last = want
		case <-time.After(20 * time.Second):
			t.Fatalf("#%d: the reader was not woken by the commit (its wait is 30 s)", i)
		}
	}
}

// Email searches take one of two plans on SQLite by how many match (see
// selectiveSearch): both answer the same pages, in id order.
func TestSearchPlansAgree(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t, filepath.Join(t.TempDir(), "keylens.db"))
	var devs []*keylens.Developer
	for i := range 2600 {
		domain := "many.example"
		if i%5 == 0 {
			domain = "few.example"
		}
		devs = append(devs, &keylens.Developer{Email: fmt.Sprintf("d%04d@%s", (i*7919)%2600, domain)})
	}
	if err := db.CreateDevelopers(ctx, devs); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{"many.example": 2080, "few.example": 520, "example": 2600, "d0007@": 1} {
		var all []*keylens.Developer
		for off := 0; ; off += 250 {
			page, total, err := db.FindDevelopers(ctx, keylens.DeveloperFilter{EmailContains: q, Offset: off, Limit: 250})
			if err != nil {
				t.Fatal(err)
			}
			if total != want {
				t.Fatalf("%q: total %d, want %d", q, total, want)
			}
			all = append(all, page...)
			if len(page) < 250 {
				break
			}
		}
		if len(all) != want {
			t.Errorf("%q: %d developers in the pages, want %d", q, len(all), want)
		}
		for i := 1; i < len(all); i++ {
			if all[i-1].ID >= all[i].ID {
				t.Fatalf("%q: page order breaks at %d", q, i)
			}
		}
	}
}

// TestPostgreSQLExclusive: of three stores on one database, one at a time
// runs the exclusive work; each runs it once the holder is done.
func TestPostgreSQLExclusive(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	sqlstore.SetExclusiveRetry(20 * time.Millisecond)
	t.Cleanup(func() { sqlstore.SetExclusiveRetry(2 * time.Second) })
	var holders, most, ran atomic.Int32
	done := make(chan struct{}, 3)
	for range 3 {
		db, err := sqlstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		go func() {
			defer func() { done <- struct{}{} }()
			db.Exclusive(context.Background(), sqlstore.LockTykOutbox, func(ctx context.Context) {
				n := holders.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(100 * time.Millisecond)
				holders.Add(-1)
				ran.Add(1)
			})
		}()
	}
	for range 3 {
		<-done
	}
	if ran.Load() != 3 || most.Load() != 1 {
		t.Errorf("%d of 3 ran the exclusive work, at most %d at once; want 3, 1", ran.Load(), most.Load())
	}
}
