package rest_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/storetest"
)

// newPortal serves the admin API over a real SQLite file.
func newPortal(t *testing.T) (*sqlstore.DB, *rest.Server, *httptest.Server) {
	t.Helper()
	db, api, srv, _ := newWatchedPortal(t)
	return db, api, srv
}

// waitingFeed is the store's change feed, telling the test on parked each
// time the server hands it a long poll (a wait over zero), after the
// server's own checks and just before the store waits.
type waitingFeed struct {
	*sqlstore.DB
	parked chan time.Duration
}

func (f waitingFeed) WaitForChanges(ctx context.Context, after int64, limit int, wait time.Duration) ([]keylens.Change, bool, error) {
	if wait > 0 {
		select {
		case f.parked <- wait:
		default: // a test that does not watch
		}
	}
	return f.DB.WaitForChanges(ctx, after, limit, wait)
}

// newWatchedPortal is newPortal whose long polls are announced on the
// channel it returns (each poll sends its wait; 16 are buffered).
func newWatchedPortal(t *testing.T) (*sqlstore.DB, *rest.Server, *httptest.Server, <-chan time.Duration) {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	feed := waitingFeed{DB: db, parked: make(chan time.Duration, 16)}
	api, err := rest.NewServer(rest.Config{Developers: db, Catalogue: db, Keys: db, Changes: feed, Credentials: db, Hits: db, Tokens: db, TokenAdmin: db,
		AdminKeyHash: sha256.Sum256([]byte("admin"))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checked(t, api.Handler()))
	t.Cleanup(srv.Close)
	return db, api, srv, feed.parked
}

// parkedPoll waits until the server hands a long poll of wait to the
// store; a poll that answers first fails the test.
func parkedPoll[T any](t *testing.T, parked <-chan time.Duration, done <-chan T, wait time.Duration) {
	t.Helper()
	select {
	case w := <-parked:
		if w != wait {
			t.Fatalf("the server waits %v, want %v", w, wait)
		}
	case r := <-done:
		t.Fatalf("the long poll answered %+v before it waited", r)
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll never reached the store")
	}
}

// TestClientIsAResolverBackend runs the resolver backends' conformance
// suite against the client of a real portal: one round trip a credential,
// with the same answers as the store.
func TestClientIsAResolverBackend(t *testing.T) {
	storetest.RunCredentials(t, func(t *testing.T) (storetest.Store, storetest.Backend) {
		db, _, srv := newPortal(t)
		c, err := rest.NewClient(srv.URL+"/", "admin")
		if err != nil {
			t.Fatal(err)
		}
		return db, c
	})
}

// TestClientFollowsTheFeedAndHits checks the client's other methods against
// the store behind a real server: the change feed, hits, and the store's
// error codes.
func TestClientFollowsTheFeedAndHits(t *testing.T) {
	ctx := context.Background()
	db, _, srv, parked := newWatchedPortal(t)
	d := &keylens.Developer{Email: "ada@example.com", Keys: map[string][]string{"0123abcd": {"p"}}}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	c, err := rest.NewClient(srv.URL+"/", "admin")
	if err != nil {
		t.Fatal(err)
	}
	last, err := c.LastChange(ctx)
	if want, _ := db.LastChange(ctx); err != nil || last != want || last == 0 {
		t.Errorf("LastChange = %d, %v; store says %d", last, err, want)
	}
	changes, gap, err := c.WaitForChanges(ctx, 0, 100, 0)
	wantChanges, _, _ := db.ChangesSince(ctx, 0, 100)
	if err != nil || gap || len(changes) != len(wantChanges) || changes[len(changes)-1].Seq != last {
		t.Errorf("WaitForChanges = %+v, %v, %v; want %+v", changes, gap, err, wantChanges)
	}
	// A long poll returns as soon as a change commits: the change commits
	// once the poll waits in the store, and the poll waits 30 s, so only
	// the store waking it can answer before the test's deadline.
	type result struct {
		changes []keylens.Change
		err     error
	}
	done := make(chan result, 1)
	go func() {
		ch, _, err := c.WaitForChanges(ctx, last, 100, 30*time.Second)
		done <- result{ch, err}
	}()
	parkedPoll(t, parked, done, 30*time.Second)
	if err := db.RevokeKey(ctx, d.ID, "0123abcd"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if ch := r.changes; r.err != nil || len(ch) != 1 || ch[0].Kind != keylens.ChangeKeyRevoked || ch[0].KeyHash != "0123abcd" {
			t.Errorf("long poll: %+v, %v", ch, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll was not woken by the change (its wait is 30 s)")
	}

	// Hits: applied once per batch id, answered per batch.
	hit := keylens.HitDelta{KeyHash: "0123abcd", APIID: "a", Hour: 480000, Code: 200, Hits: 2, Success: 2}
	for i, want := range []string{"[true false true]", "[false false true]"} {
		applied, err := c.AddHits(ctx, []keylens.HitBatch{{ID: "b1", Series: []keylens.HitDelta{hit}},
			{ID: "b1", Series: []keylens.HitDelta{hit}}, {Series: []keylens.HitDelta{hit}}})
		if err != nil || fmt.Sprint(applied) != want {
			t.Errorf("AddHits #%d: %v, %v; want %s", i+1, applied, err, want)
		}
	}
	bad := hit
	bad.Code = 42
	// The API is where a --portal sidecar's hits enter: it checks them,
	// and the store behind it does not.
	if _, err := c.AddHits(ctx, []keylens.HitBatch{{ID: "good", Series: []keylens.HitDelta{hit}}, {Series: []keylens.HitDelta{bad}}}); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a bad batch: %v, want EINVALID", err)
	}
	if applied, err := c.AddHits(ctx, []keylens.HitBatch{{ID: "good", Series: []keylens.HitDelta{hit}}}); err != nil || !applied[0] {
		t.Errorf("the good batch of a refused call was applied: %v, %v", applied, err)
	}

	wrong, _ := rest.NewClient(srv.URL, "not-the-admin-key")
	if _, err := wrong.ResolveKey(ctx, "0123abcd"); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
		t.Errorf("wrong admin key: %v", err)
	}
	down, _ := rest.NewClient("http://127.0.0.1:1", "admin")
	if err := down.Ping(ctx); keylens.ErrorCode(err) != keylens.EINTERNAL {
		t.Errorf("unreachable portal: %v", err)
	}
	for _, bad := range []string{"", "ftp://x", "localhost:3000", "http://"} {
		if _, err := rest.NewClient(bad, "admin"); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
}

// TestShutdownEndsLongPolls: a portal shutting down must not wait for
// the sidecars' long polls to time out. Shutdown comes once the poll waits
// in the store; the poll waits 30 s, so only Shutdown can end it before
// the test's deadline, and it answers what there is: nothing new.
func TestShutdownEndsLongPolls(t *testing.T) {
	ctx := context.Background()
	db, api, srv, parked := newWatchedPortal(t)
	if err := db.CreateDeveloper(ctx, &keylens.Developer{Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	last, err := db.LastChange(ctx)
	if err != nil || last == 0 {
		t.Fatalf("LastChange = %d, %v", last, err)
	}
	c, _ := rest.NewClient(srv.URL, "admin")

	type result struct {
		changes []keylens.Change
		gap     bool
		err     error
	}
	poll := func() <-chan result {
		done := make(chan result, 1)
		go func() {
			ch, gap, err := c.WaitForChanges(ctx, last, 10, 30*time.Second)
			done <- result{ch, gap, err}
		}()
		return done
	}
	done := poll()
	parkedPoll(t, parked, done, 30*time.Second)
	api.Shutdown()
	select {
	case r := <-done:
		if r.err != nil || len(r.changes) != 0 || r.gap {
			t.Errorf("long poll ended by shutdown: %+v, %v, %v; want an empty answer", r.changes, r.gap, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not end the long poll (its wait is 30 s)")
	}
	// After Shutdown, a long poll answers at once, without waiting.
	select {
	case r := <-poll():
		if r.err != nil || len(r.changes) != 0 || r.gap {
			t.Errorf("a long poll after Shutdown: %+v, %v, %v; want an empty answer", r.changes, r.gap, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a long poll after Shutdown waited")
	}
	select {
	case w := <-parked:
		t.Errorf("a long poll after Shutdown waited %v in the store", w)
	default:
	}
}
