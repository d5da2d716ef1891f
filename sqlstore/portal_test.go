package sqlstore_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// A key waiting to be shown to its developer is sealed at rest under the
// secrets key, and gone from the file once shown.
func TestRevealSealedAtRestAndGoneOnceShown(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	db := openSQLite(t, path)
	if err := db.UseSecretsKey(bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{{PolicyID: "pol", Show: true}}}); err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "s@example.com"}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	r := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol"}, ShowOnce: true}
	if err := db.CreateKeyRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	a, err := db.ApproveKeyRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := db.RawQueryRow(ctx, `SELECT secret FROM reveals`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !keylens.LooksSealed(stored) || bytes.Contains([]byte(stored), []byte(a.RawKey)) {
		t.Errorf("the kept approval is stored as %q", stored)
	}
	if fileHolds(t, path, a.RawKey) {
		t.Error("the database file holds the raw key")
	}
	got, err := db.TakeReveals(ctx, d.ID)
	if err != nil || len(got) != 1 || got[0].RawKey != a.RawKey {
		t.Fatalf("TakeReveals = %+v, %v", got, err)
	}
	var n int
	if err := db.RawQueryRow(ctx, `SELECT COUNT(*) FROM reveals`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d kept approvals after showing, %v", n, err)
	}
}

// A reset link works for PasswordResetTTL only.
func TestPasswordResetExpires(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t, filepath.Join(t.TempDir(), "k.db"))
	now := time.Now()
	db.Now = func() time.Time { return now }
	d := &keylens.Developer{Email: "s@example.com", Password: "first-pass"}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	token, _, err := db.CreatePasswordReset(ctx, d.Email)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(keylens.PasswordResetTTL - time.Second)
	if err := db.CheckPasswordReset(ctx, token); err != nil {
		t.Errorf("a token a second before it expires: %v", err)
	}
	now = now.Add(time.Second)
	if err := db.CheckPasswordReset(ctx, token); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("an expired token: %v", err)
	}
	if _, err := db.ResetPassword(ctx, token, "second-pass"); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("an expired token resets: %v", err)
	}
	var stored string
	if err := db.RawQueryRow(ctx, `SELECT token_hash FROM password_resets`).Scan(&stored); err != nil || stored != keylens.SessionHash(token) {
		t.Errorf("stored %q (%v), want only the token's SHA-256", stored, err)
	}
}
