package sqlstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
)

// fileHolds reports whether the SQLite database at path (with its WAL)
// holds s anywhere, as a thief of the file would find it.
func fileHolds(t *testing.T, path, s string) bool {
	t.Helper()
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

func TestSecretsSealedAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	key1 := bytes.Repeat([]byte{1}, 32)
	key2 := bytes.Repeat([]byte{2}, 32)
	open := func(key []byte) *sqlstore.DB {
		t.Helper()
		db, err := sqlstore.Open(ctx, "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		if key != nil {
			if err := db.UseSecretsKey(key); err != nil {
				t.Fatal(err)
			}
		}
		return db
	}
	db := open(key1)
	if err := db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
		{PolicyID: "pol-jwt", AuthType: keylens.AuthJWT}, {PolicyID: "pol-oauth", AuthType: keylens.AuthOAuth}}}); err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "s@example.com"}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	const jwtSecret, pendingSecret = "jwt-hmac-secret-at-rest-0123456789", "pending-hmac-secret-at-rest-01234"
	a, err := db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-jwt"}, JWTSecret: jwtSecret})
	if err != nil {
		t.Fatal(err)
	}
	o, err := db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-oauth"},
		OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	oauthSecret := o.OAuthClient.Secret
	pending := &keylens.KeyRequest{ByUser: d.ID, ForPlan: "pol-jwt", JWTSecret: pendingSecret}
	if err := db.CreateKeyRequest(ctx, pending); err != nil {
		t.Fatal(err)
	}
	check := func(db *sqlstore.DB, when string) {
		t.Helper()
		if c, err := db.ResolveKey(ctx, a.KeyHash); err != nil || c.Key.JWTSecret != jwtSecret {
			t.Errorf("%s: the JWT key's secret: %+v, %v", when, c, err)
		}
		if dev, err := db.FindDeveloperByID(ctx, d.ID); err != nil || dev.OAuthClients["pol-oauth"][0].Secret != oauthSecret {
			t.Errorf("%s: the OAuth client's secret: %+v, %v", when, dev, err)
		}
		if r, err := db.FindKeyRequestByID(ctx, pending.ID); err != nil || r.JWTSecret != pendingSecret {
			t.Errorf("%s: the pending request's secret: %+v, %v", when, r, err)
		}
	}
	check(db, "sealed")
	db.Close()
	for _, s := range []string{jwtSecret, oauthSecret, pendingSecret} {
		if fileHolds(t, path, s) {
			t.Errorf("the database file holds %q in the clear", s)
		}
	}

	// The wrong key, or none, is refused before anything is served.
	for name, key := range map[string][]byte{"no key": nil, "another key": key2} {
		other := open(key)
		if err := other.CheckSecrets(ctx); err == nil || !strings.Contains(err.Error(), "sealed with key") {
			t.Errorf("%s: CheckSecrets = %v", name, err)
		}
		other.Close()
	}

	// Rotation: sealed under the new key; the old one no longer opens them.
	db = open(key1)
	if n, err := db.RotateSecrets(ctx, key2); err != nil || n != 3 {
		t.Fatalf("rotate: %d, %v", n, err)
	}
	db.Close()
	if old := open(key1); old.CheckSecrets(ctx) == nil {
		t.Error("the old key still opens the secrets after rotation")
	} else {
		old.Close()
	}
	db = open(key2)
	if err := db.CheckSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	check(db, "rotated")
	// Rotating to no key stores them as Tyk does, in the clear.
	if _, err := db.RotateSecrets(ctx, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if !fileHolds(t, path, jwtSecret) {
		t.Error("unsealed secrets are not in the file: the test cannot see what it looks for")
	}
	clear := open(nil)
	check(clear, "unsealed")
	clear.Close()
}

func TestParseSecretsKey(t *testing.T) {
	for _, s := range []string{strings.Repeat("ab", 32), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", strings.Repeat("x", 32)} {
		if k, err := sqlstore.ParseSecretsKey(s); err != nil || len(k) != 32 {
			t.Errorf("ParseSecretsKey(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "short", strings.Repeat("ab", 31), strings.Repeat("x", 33)} {
		if _, err := sqlstore.ParseSecretsKey(s); err == nil {
			t.Errorf("ParseSecretsKey(%q) accepted", s)
		}
	}
}

// TestSecretsKeySetLater: a key set on a store that held secrets in the
// clear seals them; a client's secret that looks sealed is refused.
func TestSecretsKeySetLater(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{{PolicyID: "pol-jwt", AuthType: keylens.AuthJWT}}}); err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "later@example.com"}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	const secret = "a-clear-hmac-secret-stored-first-0123"
	a, err := db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-jwt"}, JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	fake := &keylens.KeyRequest{ByUser: d.ID, ForPlan: "pol-jwt", JWTSecret: "keylens-sealed:v1:deadbeef:" + strings.Repeat("ab", 20)}
	if err := db.CreateKeyRequest(ctx, fake); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a secret that looks sealed: %v, want EINVALID", err)
	}
	db.Close()
	db, err = sqlstore.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.UseSecretsKey(bytes.Repeat([]byte{7}, 32)); err != nil {
		t.Fatal(err)
	}
	if n, err := db.SealCleartext(ctx); err != nil || n != 1 {
		t.Fatalf("SealCleartext: %d, %v", n, err)
	}
	if c, err := db.ResolveKey(ctx, a.KeyHash); err != nil || c.Key.JWTSecret != secret {
		t.Errorf("the sealed secret reads %+v, %v", c, err)
	}
	if n, _ := db.SealCleartext(ctx); n != 0 {
		t.Errorf("a second SealCleartext sealed %d again", n)
	}
}
