package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sqlstore"
)

// TestFullStore: a write that finds the store out of space is EFULL (not
// an internal error), stores nothing, and marks the store unhealthy until a
// write succeeds again. The log hears of it twice: when it starts, and when
// it ends, with the number of writes refused meanwhile.
func TestFullStore(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t, filepath.Join(t.TempDir(), "k.db"))
	var log bytes.Buffer
	db.Logger = slog.New(slog.NewTextHandler(&log, nil))
	var pageCount int
	if err := db.RawQueryRow(ctx, `PRAGMA page_count`).Scan(&pageCount); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.SetMaxPageCount(db, pageCount+2); err != nil {
		t.Fatal(err)
	}
	var err error
	created := 0
	for i := 0; i < 10000 && err == nil; i++ {
		err = db.CreateDeveloper(ctx, &keylens.Developer{Email: fmt.Sprintf("d%d@example.com", i),
			Fields: map[string]string{"padding": strings.Repeat("x", 2000)}})
		if err == nil {
			created++
		}
	}
	if keylens.ErrorCode(err) != keylens.EFULL {
		t.Fatalf("a write to a full store: %v, want EFULL", err)
	}
	if err := db.Ping(ctx); keylens.ErrorCode(err) != keylens.EFULL {
		t.Errorf("Ping of a full store: %v, want EFULL", err)
	}
	if _, n, _ := db.FindDevelopers(ctx, keylens.DeveloperFilter{}); n != created {
		t.Errorf("%d developers stored, want %d: the refused write left something", n, created)
	}
	for i := range 20 { // a flood of refused requests
		if err := db.CreateDeveloper(ctx, &keylens.Developer{Email: fmt.Sprintf("more%d@example.com", i),
			Fields: map[string]string{"padding": strings.Repeat("x", 2000)}}); keylens.ErrorCode(err) != keylens.EFULL {
			t.Fatalf("another write to the full store: %v", err)
		}
	}
	// Space comes back: the next write succeeds and health returns.
	if err := sqlstore.SetMaxPageCount(db, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDeveloper(ctx, &keylens.Developer{Email: "after@example.com"}); err != nil {
		t.Fatalf("a write after space returned: %v", err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping after space returned: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "out of space") ||
		!strings.Contains(lines[1], "level=INFO") || !strings.Contains(lines[1], "space again") || !strings.Contains(lines[1], "refused_writes=21") {
		t.Errorf("the log of a full store and its end:\n%s\nwant an ERROR line when it started, an INFO line with refused_writes=21 when it ended", log.String())
	}
}

// TestRehashToConfiguredCost: a password stored at another bcrypt cost (an
// import, or an older --bcrypt-cost) is stored again at the configured cost
// on its next successful check; a failed check changes nothing.
func TestRehashToConfiguredCost(t *testing.T) {
	ctx := context.Background()
	// The tests hash at bcrypt.MinCost (TestMain): configure another.
	defer keylens.SetBcryptCost(keylens.BcryptCost())
	if err := keylens.SetBcryptCost(bcrypt.MinCost + 1); err != nil {
		t.Fatal(err)
	}
	db := openSQLite(t, filepath.Join(t.TempDir(), "k.db"))
	cheap, err := bcrypt.GenerateFromPassword([]byte("imported-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "imported@example.com", Password: string(cheap)}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	cost := func() int {
		got, _ := db.FindDeveloperByEmail(ctx, d.Email)
		c, err := bcrypt.Cost([]byte(got.PasswordHash))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := db.VerifyCredentials(ctx, d.Email, "wrong-password"); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED || cost() != bcrypt.MinCost {
		t.Fatalf("a failed check: %v, cost %d", err, cost())
	}
	if _, err := db.VerifyCredentials(ctx, d.Email, "imported-password"); err != nil {
		t.Fatal(err)
	}
	if c := cost(); c != keylens.BcryptCost() {
		t.Errorf("after a successful check the hash has cost %d, want the configured %d", c, keylens.BcryptCost())
	}
	if _, err := db.VerifyCredentials(ctx, d.Email, "imported-password"); err != nil {
		t.Errorf("the rehashed password: %v", err)
	}
}
