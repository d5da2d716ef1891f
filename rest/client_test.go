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
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	api, err := rest.NewServer(rest.Config{Developers: db, Catalogue: db, Keys: db, Changes: db, Credentials: db, Hits: db, Tokens: db, TokenAdmin: db,
		AdminKeyHash: sha256.Sum256([]byte("admin"))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(checked(t, api.Handler()))
	t.Cleanup(srv.Close)
	return db, api, srv
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
	db, _, srv := newPortal(t)
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
	// A long poll returns as soon as a change commits.
	done := make(chan []keylens.Change, 1)
	go func() {
		ch, _, _ := c.WaitForChanges(ctx, last, 100, 20*time.Second)
		done <- ch
	}()
	time.Sleep(100 * time.Millisecond)
	if err := db.RevokeKey(ctx, d.ID, "0123abcd"); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-done:
		if len(ch) != 1 || ch[0].Kind != keylens.ChangeKeyRevoked || ch[0].KeyHash != "0123abcd" {
			t.Errorf("long poll: %+v", ch)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll did not return on a change")
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
	if _, err := c.AddHits(ctx, []keylens.HitBatch{{Series: []keylens.HitDelta{bad}}}); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a bad batch: %v, want EINVALID", err)
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
// the sidecars' long polls to time out.
func TestShutdownEndsLongPolls(t *testing.T) {
	ctx := context.Background()
	_, api, srv := newPortal(t)
	c, _ := rest.NewClient(srv.URL, "admin")

	done := make(chan error, 1)
	go func() {
		_, _, err := c.WaitForChanges(ctx, 0, 10, 25*time.Second)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	api.Shutdown()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("long poll ended by shutdown: %v, want an empty answer", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not end the long poll")
	}
	start := time.Now()
	if _, _, err := c.WaitForChanges(ctx, 0, 10, 25*time.Second); err != nil || time.Since(start) > 10*time.Second {
		t.Errorf("a long poll after Shutdown waited %v (%v)", time.Since(start), err)
	}
}
