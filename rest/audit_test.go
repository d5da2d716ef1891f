package rest_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sqlstore"
)

// Changes through the REST API are in the audit trail as the admin key's;
// reads and refused requests record nothing.
func TestChangesAreAuditedAsTheAdminKey(t *testing.T) {
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	api, err := rest.NewServer(rest.Config{Developers: db, Catalogue: db, Keys: db, Changes: db, Credentials: db, Hits: db, Tokens: db, TokenAdmin: db,
		AdminKeyHash: sha256.Sum256([]byte("admin-key-for-tests"))})
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path, body, key string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", key)
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if c := send("POST", "/api/portal/developers", `{"email":"ada@example.com"}`, "admin-key-for-tests"); c != http.StatusOK {
		t.Fatalf("create: %d", c)
	}
	send("POST", "/api/portal/developers", `{"email":"eve@example.com"}`, "wrong-key")
	send("POST", "/api/portal/developers", `{"email":"not an email"}`, "admin-key-for-tests")
	send("GET", "/api/portal/developers", ``, "admin-key-for-tests")
	entries, total, err := db.FindAudit(context.Background(), keylens.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || entries[0].Action != keylens.AuditDeveloperCreated || entries[0].Actor != "admin key" ||
		entries[0].Via != keylens.ViaAPI || entries[0].Detail != "ada@example.com" {
		t.Fatalf("audit trail %+v (%d): want one developer.created by the admin key via the API", entries, total)
	}
}
