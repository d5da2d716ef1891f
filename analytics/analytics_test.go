package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/portalstore"
	"github.com/keylens/keylens/portalstore/sqlstore"
)

func openStore(t testing.TB) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var day = time.Date(2017, 8, 9, 12, 31, 2, 0, time.UTC)

// query returns the day rows of keys around day.
func query(t *testing.T, db *sqlstore.DB, byCode bool, keys ...string) []portalstore.HitRow {
	t.Helper()
	rows, err := db.QueryHits(context.Background(), portalstore.HitQuery{Keys: keys,
		From: day.AddDate(0, 0, -1), To: day.AddDate(0, 0, 2), Res: portalstore.ResDay, ByCode: byCode})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestRecordFlushQuery(t *testing.T) {
	db := openStore(t)
	rec := analytics.NewRecorder(0)
	f := analytics.NewFlusher(rec, db, analytics.FlusherOptions{})
	for i := range 10 {
		rec.Record("add2b342", "api1", day, 200, time.Duration(i)*time.Millisecond)
	}
	rec.Record("add2b342", "api1", day.Add(-time.Hour), 302, -1)
	rec.Record("5f1d9603", "api2", day, 404, -1)
	rec.Record("5f1d9603", "api2", day, 500, -1)
	rec.Record("5f1d9603", "api2", day, 429, -1)
	rec.Record("other", "api1", day, 200, -1)
	if err := f.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := query(t, db, false, "add2b342", "5f1d9603")
	if len(rows) != 1 {
		t.Fatalf("rows %+v, want one day", rows)
	}
	r := rows[0]
	want := portalstore.HitRow{Period: time.Date(2017, 8, 9, 0, 0, 0, 0, time.UTC), Code: 200,
		Hits: 14, Success: 10, Errors: 3, LastHit: day, LatencyMS: 4.5}
	if r != want {
		t.Errorf("day row\n got %+v\nwant %+v", r, want)
	}
	byCode := query(t, db, true, "add2b342", "5f1d9603")
	var codes []int
	for _, r := range byCode {
		codes = append(codes, r.Code)
	}
	if fmt.Sprint(codes) != "[200 302 404 429 500]" || byCode[0].Hits != 10 || byCode[2].Errors != 1 {
		t.Errorf("by code: %+v", byCode)
	}
	// A second flush adds only what came since.
	rec.Record("add2b342", "api1", day, 200, -1)
	if err := f.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.Flush(context.Background()) != nil || query(t, db, false, "add2b342")[0].Hits != 12 {
		t.Errorf("after a second flush: %+v", query(t, db, false, "add2b342"))
	}
	if rec.Recorded() != 16 || rec.Dropped() != 0 {
		t.Errorf("recorded %d, dropped %d", rec.Recorded(), rec.Dropped())
	}
}

// flaky is a sink that fails on demand, either before storing (the store was
// unreachable) or after (the answer was lost): either way the flusher must
// retry, and the store must count the batch exactly once.
type flaky struct {
	db         *sqlstore.DB
	mu         sync.Mutex
	failBefore int
	failAfter  int
	batches    []string
}

func (f *flaky) AddHits(ctx context.Context, id string, d []portalstore.HitDelta) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, id)
	if f.failBefore > 0 {
		f.failBefore--
		return errors.New("store unreachable")
	}
	if err := f.db.AddHits(ctx, id, d); err != nil {
		return err
	}
	if f.failAfter > 0 {
		f.failAfter--
		return errors.New("answer lost")
	}
	return nil
}

func TestFlushRetriesWithoutDoubling(t *testing.T) {
	db := openStore(t)
	sink := &flaky{db: db, failBefore: 1, failAfter: 2}
	rec := analytics.NewRecorder(0)
	f := analytics.NewFlusher(rec, sink, analytics.FlusherOptions{})
	ctx := context.Background()
	for range 5 {
		rec.Record("k1", "a", day, 200, -1)
	}
	if f.Flush(ctx) == nil { // unreachable
		t.Fatal("flush reported success")
	}
	rec.Record("k1", "a", day, 200, -1) // arrives while the batch is pending
	if f.Flush(ctx) == nil {            // stored, answer lost
		t.Fatal("flush reported success")
	}
	if f.Flush(ctx) == nil { // the retry is recognised as applied; its answer is lost again
		t.Fatal("flush reported success")
	}
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, db, false, "k1"); len(got) != 1 || got[0].Hits != 6 {
		t.Errorf("stored %+v, want 6 hits exactly", got)
	}
	// One batch sent four times (the last answered), then the hit that
	// arrived meanwhile in a batch of its own.
	if b := sink.batches; len(b) != 5 || b[0] != b[1] || b[1] != b[2] || b[2] != b[3] || b[3] == b[4] {
		t.Errorf("batch ids sent: %v", b)
	}
}

func TestRecorderBoundsSeries(t *testing.T) {
	rec := analytics.NewRecorder(3)
	for i := range 5 {
		rec.Record(fmt.Sprint("key", i), "a", day, 200, -1)
	}
	if !rec.Record("key0", "a", day, 200, -1) {
		t.Error("a hit of an existing series was refused")
	}
	if rec.Series() != 3 || rec.Dropped() != 2 || rec.Recorded() != 4 {
		t.Errorf("series %d, dropped %d, recorded %d", rec.Series(), rec.Dropped(), rec.Recorded())
	}
	// Series idle for three flushes are forgotten, making room.
	f := analytics.NewFlusher(rec, openStore(t), analytics.FlusherOptions{})
	for range 4 {
		if err := f.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if rec.Series() != 0 || !rec.Record("key4", "a", day, 200, -1) {
		t.Errorf("idle series kept: %d", rec.Series())
	}
}

func TestConcurrentRecordingAddsUp(t *testing.T) {
	db := openStore(t)
	rec := analytics.NewRecorder(0)
	f := analytics.NewFlusher(rec, db, analytics.FlusherOptions{Interval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				rec.Record(fmt.Sprintf("key%02d", (i+w)%20), "a", day, 200+(i%3)*100, -1)
			}
		})
	}
	wg.Wait()
	cancel()
	<-done
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("key%02d", i)
	}
	rows := query(t, db, false, keys...)
	// Codes cycle 200, 300, 400 over i = 0..4999 in each of 4 writers.
	if len(rows) != 1 || rows[0].Hits != 20000 || rows[0].Success != 4*1667 || rows[0].Errors != 4*1666 {
		t.Errorf("stored %+v, want 20000 hits, 6668 success, 6664 errors", rows)
	}
}
