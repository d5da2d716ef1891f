package pgtest_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/keylens/keylens/sqlstore/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func TestClusterServesDatabases(t *testing.T) {
	c := pgtest.Shared(t)
	for range 2 {
		db, err := sql.Open("pgx", c.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow("SELECT 40 + 2").Scan(&n); err != nil || n != 42 {
			t.Fatalf("SELECT: %d, %v", n, err)
		}
		db.Close()
	}
}
