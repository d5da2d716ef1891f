package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// An expired token is unknown at once, before any pruning; sealed client
// secrets still authenticate.
func TestTokenExpiresOnTheStoreClock(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t, filepath.Join(t.TempDir(), "k.db"))
	if err := db.UseSecretsKey([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	if err := db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{{PolicyID: "p", AuthType: keylens.AuthOAuth}}}); err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "ada@example.com"}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	a, err := db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	_, hash := keylens.NewAccessToken()
	g, err := db.IssueToken(ctx, keylens.ClientCredentials{ID: a.OAuthClient.ClientID, Secret: a.OAuthClient.Secret}, hash, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if g.IssuedAt != now.Unix() || g.ExpiresAt != now.Add(time.Minute).Unix() {
		t.Errorf("grant %+v", g)
	}
	now = now.Add(59 * time.Second)
	if _, err := db.ResolveToken(ctx, hash); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := db.ResolveToken(ctx, hash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Fatalf("at expiry: %v, want ENOTFOUND", err)
	}
	if n, err := db.PruneTokens(ctx, now); err != nil || n != 1 {
		t.Errorf("PruneTokens: %d, %v", n, err)
	}
}
