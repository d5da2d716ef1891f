package rest_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/keylens/keylens/portalstore"
	"github.com/keylens/keylens/portalstore/rest"
	"github.com/keylens/keylens/portalstore/sqlstore"
)

// TestClientReadsWhatTheStoreHolds checks every Client method against the
// store behind a real server: same keys (with their verification
// material), developers and change feed, and the store's error codes.
// newPortal serves the admin API over a real SQLite file.
func newPortal(t *testing.T) (*sqlstore.DB, *rest.Server, *httptest.Server) {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	api, err := rest.NewServer(rest.Config{Developers: db, Catalogue: db, Keys: db, Changes: db, Hits: db, AdminKeyHash: sha256.Sum256([]byte("admin"))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return db, api, srv
}

func TestClientReadsWhatTheStoreHolds(t *testing.T) {
	ctx := context.Background()
	db, _, srv := newPortal(t)

	if err := db.PutCatalogue(ctx, &portalstore.Catalogue{APIs: []portalstore.CatalogueEntry{
		{PolicyID: "pol-token"}, {PolicyID: "pol-basic", AuthType: portalstore.AuthBasic},
		{PolicyID: "pol-jwt", AuthType: portalstore.AuthJWT}}}); err != nil {
		t.Fatal(err)
	}
	d := &portalstore.Developer{Email: "ada@example.com", Fields: map[string]string{"Plan": "gold"}}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, kr := range []portalstore.KeyRequest{
		{ApplyPolicies: []string{"pol-token"}, Fields: map[string]any{"use": "tests"}},
		{ApplyPolicies: []string{"pol-basic"}},
		{ApplyPolicies: []string{"pol-jwt"}, JWTSecret: "an-hmac-secret-of-32-characters!"},
	} {
		a, err := db.IssueKey(ctx, d.ID, &kr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, a.KeyHash)
	}

	c, err := rest.NewClient(srv.URL+"/", "admin")
	if err != nil {
		t.Fatal(err)
	}
	sameKey := func(name string, got, want *portalstore.Key, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) || got.BasicPasswordHash != want.BasicPasswordHash ||
			got.JWTSecret != want.JWTSecret || got.JWTPublicKey != want.JWTPublicKey {
			t.Errorf("%s:\n got %s %+v\nwant %s %+v", name, gj, got, wj, want)
		}
	}
	for _, h := range hashes {
		want, _ := db.FindKey(ctx, h)
		got, err := c.FindKey(ctx, h)
		sameKey("FindKey "+want.AuthType, got, want, err)
	}
	basic, _ := db.FindKey(ctx, hashes[1])
	if basic.BasicPasswordHash == "" {
		t.Fatal("the basic key has no password hash to compare")
	}
	got, err := c.FindKeyByBasicUsername(ctx, basic.BasicUsername)
	sameKey("FindKeyByBasicUsername", got, basic, err)

	wantDev, _ := db.FindDeveloperByID(ctx, d.ID)
	gotDev, err := c.FindDeveloperByID(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(gotDev)
	wj, _ := json.Marshal(wantDev)
	if string(gj) != string(wj) || gotDev.Inactive != wantDev.Inactive {
		t.Errorf("FindDeveloperByID:\n got %s\nwant %s", gj, wj)
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
	done := make(chan []portalstore.Change, 1)
	go func() {
		ch, _, _ := c.WaitForChanges(ctx, last, 100, 20*time.Second)
		done <- ch
	}()
	time.Sleep(100 * time.Millisecond)
	if err := db.RevokeKey(ctx, d.ID, hashes[0]); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-done:
		if len(ch) != 1 || ch[0].Kind != portalstore.ChangeKeyRevoked || ch[0].KeyHash != hashes[0] {
			t.Errorf("long poll: %+v", ch)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long poll did not return on a change")
	}

	for name, err := range map[string]error{
		"revoked key":    func() error { _, err := c.FindKey(ctx, hashes[0]); return err }(),
		"unknown user":   func() error { _, err := c.FindKeyByBasicUsername(ctx, "nobody"); return err }(),
		"unknown dev":    func() error { _, err := c.FindDeveloperByID(ctx, "000000000000000000000000"); return err }(),
		"path in a hash": func() error { _, err := c.FindKey(ctx, "../developers"); return err }(),
	} {
		if portalstore.ErrorCode(err) != portalstore.ENOTFOUND {
			t.Errorf("%s: %v, want ENOTFOUND", name, err)
		}
	}
	wrong, _ := rest.NewClient(srv.URL, "not-the-admin-key")
	if _, err := wrong.FindKey(ctx, hashes[1]); portalstore.ErrorCode(err) != portalstore.EUNAUTHORIZED {
		t.Errorf("wrong admin key: %v", err)
	}
	down, _ := rest.NewClient("http://127.0.0.1:1", "admin")
	if err := down.Ping(ctx); portalstore.ErrorCode(err) != portalstore.EINTERNAL {
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
