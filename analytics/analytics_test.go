package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/sqlstore"
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
func query(t testing.TB, db *sqlstore.DB, byCode bool, keys ...string) []keylens.HitRow {
	t.Helper()
	rows, err := db.QueryHits(context.Background(), keylens.HitQuery{Keys: keys,
		From: day.AddDate(0, 0, -1), To: day.AddDate(0, 0, 2), Res: keylens.ResDay, ByCode: byCode})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// series is n hits of key on api at day answered with code.
func series(key, api string, code int, n int64) keylens.HitDelta {
	d := keylens.HitDelta{KeyHash: key, APIID: api, Hour: day.Unix() / 3600, Code: code, Hits: n, LastHit: day.UnixNano()}
	switch {
	case code < 300:
		d.Success = n
	case code >= 400:
		d.Errors = n
	}
	return d
}

func batch(id string, s ...keylens.HitDelta) []keylens.HitBatch {
	return []keylens.HitBatch{{ID: id, Series: s}}
}

func closeCommitter(t testing.TB, c *analytics.Committer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCommitterAcknowledgesWhatIsStored(t *testing.T) {
	db := openStore(t)
	c := analytics.NewCommitter(db, analytics.CommitterOptions{})
	defer closeCommitter(t, c)
	ctx := context.Background()
	applied, err := c.AddHits(ctx, batch("b1", series("k1", "a", 200, 5), series("k1", "a", 404, 2)))
	if err != nil || len(applied) != 1 || !applied[0] {
		t.Fatalf("applied %v, %v", applied, err)
	}
	// Stored by the time AddHits returned: read at once, no waiting.
	if rows := query(t, db, false, "k1"); len(rows) != 1 || rows[0].Hits != 7 || rows[0].Errors != 2 {
		t.Fatalf("stored %+v, want 7 hits", rows)
	}
	// The same id again is acknowledged and not counted.
	applied, err = c.AddHits(ctx, batch("b1", series("k1", "a", 200, 5)))
	if err != nil || applied[0] {
		t.Errorf("a repeated batch: applied %v, %v", applied, err)
	}
	if rows := query(t, db, false, "k1"); rows[0].Hits != 7 {
		t.Errorf("a repeated batch was counted: %+v", rows)
	}
}

// flaky fails commits on demand, before storing (the store was
// unreachable) or after (the answer was lost).
type flaky struct {
	db         *sqlstore.DB
	mu         sync.Mutex
	failBefore int
	failAfter  int
	calls      int
}

func (f *flaky) AddHits(ctx context.Context, b []keylens.HitBatch) ([]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.failBefore > 0 {
		f.failBefore--
		return nil, errors.New("store unreachable")
	}
	applied, err := f.db.AddHits(ctx, b)
	if err != nil {
		return nil, err
	}
	if f.failAfter > 0 {
		f.failAfter--
		return nil, errors.New("answer lost")
	}
	return applied, nil
}

func TestCommitterRetriesWithoutDoubling(t *testing.T) {
	db := openStore(t)
	store := &flaky{db: db, failBefore: 1, failAfter: 2}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{})
	defer closeCommitter(t, c)
	applied, err := c.AddHits(context.Background(), batch("b1", series("k1", "a", 200, 6)))
	if err != nil || !applied[0] {
		t.Fatalf("applied %v, %v", applied, err)
	}
	if rows := query(t, db, false, "k1"); len(rows) != 1 || rows[0].Hits != 6 {
		t.Errorf("stored %+v, want 6 hits exactly", rows)
	}
	if store.calls != 4 {
		t.Errorf("%d attempts, want 4 (unreachable, lost, lost, answered)", store.calls)
	}
}

func TestCommitterTellsWritersToRetry(t *testing.T) {
	db := openStore(t)
	store := &flaky{db: db, failBefore: 1 << 30}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{})
	defer closeCommitter(t, c)
	_, err := c.AddHits(context.Background(), batch("b1", series("k1", "a", 200, 6)))
	if keylens.ErrorCode(err) != keylens.EUNAVAILABLE {
		t.Fatalf("a store that keeps failing: %v, want EUNAVAILABLE", err)
	}
	store.mu.Lock()
	store.failBefore = 0
	store.mu.Unlock()
	// The writer sends the batch again, under its id: stored once.
	for range 2 {
		if _, err := c.AddHits(context.Background(), batch("b1", series("k1", "a", 200, 6))); err != nil {
			t.Fatal(err)
		}
	}
	if rows := query(t, db, false, "k1"); len(rows) != 1 || rows[0].Hits != 6 {
		t.Errorf("stored %+v, want 6 hits exactly", rows)
	}
}

// counting counts the transactions and the largest group.
type counting struct {
	keylens.HitWriter
	calls, maxRows atomic.Int64
	gate           chan struct{} // when not nil, each commit waits for a token
}

func (s *counting) AddHits(ctx context.Context, b []keylens.HitBatch) ([]bool, error) {
	if s.gate != nil {
		<-s.gate
	}
	s.calls.Add(1)
	var rows int64
	for i := range b {
		rows += int64(len(b[i].Series))
	}
	for {
		m := s.maxRows.Load()
		if rows <= m || s.maxRows.CompareAndSwap(m, rows) {
			break
		}
	}
	return s.HitWriter.AddHits(ctx, b)
}

func TestCommitterGroupsConcurrentBatches(t *testing.T) {
	db := openStore(t)
	store := &counting{HitWriter: db}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{MaxRows: 50})
	defer closeCommitter(t, c)
	var wg sync.WaitGroup
	const writers, each = 16, 20
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := c.AddHits(context.Background(), batch(fmt.Sprintf("w%d-%d", w, i),
					series(fmt.Sprintf("key%02d", w), "a", 200, 1), series("shared", "a", 500, 2))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if rows := query(t, db, true, "shared"); len(rows) != 1 || rows[0].Hits != 2*writers*each {
		t.Errorf("shared key: %+v, want %d hits", rows, 2*writers*each)
	}
	var keys []string
	for w := range writers {
		keys = append(keys, fmt.Sprintf("key%02d", w))
	}
	if rows := query(t, db, false, keys...); len(rows) != 1 || rows[0].Hits != writers*each {
		t.Errorf("own keys: %+v, want %d hits", rows, writers*each)
	}
	if n := store.calls.Load(); n >= writers*each {
		t.Errorf("%d transactions for %d batches: none were grouped", n, writers*each)
	}
	if m := store.maxRows.Load(); m > 50 {
		t.Errorf("a transaction wrote %d series, over MaxRows 50", m)
	}
	t.Logf("%d batches in %d transactions", writers*each, store.calls.Load())
}

func TestCommitterBackpressure(t *testing.T) {
	db := openStore(t)
	store := &counting{HitWriter: db, gate: make(chan struct{})}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{MaxQueuedRows: 4})
	ctx := context.Background()
	// The first commit holds the store; three more series wait; the
	// fifth is refused, and accepted again once the queue has room.
	results := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := c.AddHits(ctx, batch(fmt.Sprint("b", i), series("k", "a", 200, 1)))
			results <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Pending() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_, err := c.AddHits(ctx, batch("b-over", series("k", "a", 200, 100)))
	if !errors.Is(err, analytics.ErrBusy) || keylens.ErrorCode(err) != keylens.EUNAVAILABLE {
		t.Fatalf("over the limit: %v, want ErrBusy", err)
	}
	close(store.gate) // the store answers from now on
	for range 4 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if _, err := c.AddHits(ctx, batch("b-over", series("k", "a", 200, 100))); err != nil {
		t.Errorf("after the queue drained: %v", err)
	}
	closeCommitter(t, c)
	if rows := query(t, db, false, "k"); len(rows) != 1 || rows[0].Hits != 104 {
		t.Errorf("stored %+v, want 104 hits", rows)
	}
}

// backlogged is a store whose backlog (keylens.HitBacklogger) a test sets.
type backlogged struct {
	keylens.HitWriter
	n atomic.Int64
}

func (b *backlogged) HitBacklog() int64 { return b.n.Load() }

// TestCommitterRefusesWhileTheStoreIsBehind: while the store's backlog of
// hits committed and not yet folded is at MaxBacklog, batches are refused
// before any work, by AddHits and by Reserve; below it they are taken.
func TestCommitterRefusesWhileTheStoreIsBehind(t *testing.T) {
	db := openStore(t)
	store := &backlogged{HitWriter: db}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{MaxBacklog: 100})
	defer closeCommitter(t, c)
	ctx := context.Background()
	store.n.Store(100)
	if _, err := c.AddHits(ctx, batch("b1", series("k", "a", 200, 1))); !errors.Is(err, analytics.ErrBusy) {
		t.Errorf("AddHits at the backlog limit: %v, want ErrBusy", err)
	}
	if _, err := c.Reserve(1); !errors.Is(err, analytics.ErrBusy) {
		t.Errorf("Reserve at the backlog limit: %v, want ErrBusy", err)
	}
	store.n.Store(99)
	if _, err := c.AddHits(ctx, batch("b1", series("k", "a", 200, 1))); err != nil {
		t.Errorf("AddHits below the backlog limit: %v", err)
	}
	if rows := query(t, db, false, "k"); len(rows) != 1 || rows[0].Hits != 1 {
		t.Errorf("stored %+v, want the one hit taken", rows)
	}
}

// TestCommitterReservesAtomically: writers reserving room at once, while
// the store holds a commit, never take more than MaxQueuedRows between
// them; room released or committed is there again for the next.
func TestCommitterReservesAtomically(t *testing.T) {
	db := openStore(t)
	store := &counting{HitWriter: db, gate: make(chan struct{})}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{MaxQueuedRows: 100})
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { // holds the store: 10 series busy
		_, err := c.AddHits(ctx, batch("held", distinctSeries("held", 10)...))
		first <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c.Pending() < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var granted []keylens.HitReservation
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			r, err := c.Reserve(7)
			if err != nil {
				if !errors.Is(err, analytics.ErrBusy) {
					t.Errorf("Reserve: %v, want ErrBusy", err)
				}
				return
			}
			mu.Lock()
			granted = append(granted, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	// 90 rows of room left: 12 reservations of 7, not one more.
	if len(granted) != 12 {
		t.Fatalf("%d reservations of 7 series granted with 90 free, want 12", len(granted))
	}
	if _, err := c.Reserve(7); !errors.Is(err, analytics.ErrBusy) {
		t.Fatalf("Reserve with the room taken: %v, want ErrBusy", err)
	}
	granted[0].Release()
	granted[0].Release() // twice is once
	r, err := c.Reserve(7)
	if err != nil {
		t.Fatalf("Reserve after a release: %v", err)
	}
	if _, err := c.Reserve(7); !errors.Is(err, analytics.ErrBusy) {
		t.Fatalf("a double release gave back room twice: %v", err)
	}
	close(store.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// A reservation commits its batch; the room goes with the commit.
	if _, err := r.AddHits(ctx, batch("reserved", distinctSeries("r", 5)...)); err != nil {
		t.Fatalf("AddHits in a reservation: %v", err)
	}
	r.Release() // after AddHits: nothing
	for _, g := range granted[1:] {
		g.Release()
	}
	if _, err := c.Reserve(100); err != nil {
		t.Errorf("every reservation released, yet no room for MaxQueuedRows: %v", err)
	}
	closeCommitter(t, c)
	if rows := query(t, db, false, "r0", "r1", "r2", "r3", "r4"); len(rows) != 1 || rows[0].Hits != 5 {
		t.Errorf("stored %+v, want the reserved batch's 5 hits", rows)
	}
}

// distinctSeries is n series of one hit, on keys prefix0 … prefix(n-1).
func distinctSeries(prefix string, n int) []keylens.HitDelta {
	out := make([]keylens.HitDelta, n)
	for i := range out {
		out[i] = series(fmt.Sprint(prefix, i), "a", 200, 1)
	}
	return out
}

func TestCommitterClose(t *testing.T) {
	db := openStore(t)
	store := &counting{HitWriter: db, gate: make(chan struct{})}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{})
	ctx := context.Background()
	taken := make(chan error, 1)
	go func() {
		_, err := c.AddHits(ctx, batch("taken", series("k", "a", 200, 1)))
		taken <- err
	}()
	for store.calls.Load() == 0 && c.Pending() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		closed <- c.Close(cctx)
	}()
	// Once closing, new batches are refused. (One sent before Close
	// began is taken, and waits with the first: its writer stops
	// waiting, and it is committed all the same.)
	var err error
	late := 0
	for err == nil || errors.Is(err, context.DeadlineExceeded) {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		_, err = c.AddHits(lctx, batch(fmt.Sprint("late", late), series("k", "a", 200, 1)))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			late++
		}
	}
	if !errors.Is(err, analytics.ErrClosing) {
		t.Fatalf("a batch during Close: %v, want ErrClosing", err)
	}
	// What was taken is committed before Close returns.
	close(store.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-taken; err != nil {
		t.Fatal(err)
	}
	if rows := query(t, db, false, "k"); len(rows) != 1 || rows[0].Hits != int64(1+late) {
		t.Errorf("stored %+v, want %d hits: the batches taken", rows, 1+late)
	}
}

func TestCommitterCloseDeadline(t *testing.T) {
	db := openStore(t)
	store := &counting{HitWriter: db, gate: make(chan struct{})}
	c := analytics.NewCommitter(store, analytics.CommitterOptions{})
	first, second := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := c.AddHits(context.Background(), batch("first", series("k", "a", 200, 3)))
		first <- err
	}()
	for c.Pending() == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		_, err := c.AddHits(context.Background(), batch("second", series("k", "a", 200, 4)))
		second <- err
	}()
	for c.Pending() < 7 {
		time.Sleep(time.Millisecond)
	}
	// The first commit holds the store past Close's deadline: the
	// second batch, never started, is refused to its writer, and the
	// attempt under way is cancelled (a store that hangs cannot hold
	// shutdown); its writer is told so too, and keeps its batch.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- c.Close(ctx) }()
	if err := <-second; !errors.Is(err, analytics.ErrClosing) {
		t.Errorf("the writer of a batch never started was told %v, want ErrClosing", err)
	}
	close(store.gate)
	if err := <-closed; err == nil || !strings.Contains(err.Error(), "7 hits") {
		t.Errorf("Close: %v, want the 7 hits refused reported", err)
	}
	if err := <-first; !errors.Is(err, analytics.ErrClosing) {
		t.Errorf("the batch under way: %v, want ErrClosing", err)
	}
	if rows := query(t, db, false, "k"); len(rows) != 0 {
		t.Errorf("stored %+v, want nothing: the attempt was cancelled", rows)
	}
}
