package rest_test

import (
	"os"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/keylens/keylens"
)

// TestMain hashes the tests' passwords at bcrypt's lowest cost, through
// the process setting --bcrypt-cost sets: the production cost buys nothing
// in a test and costs a share of its time.
func TestMain(m *testing.M) {
	if err := keylens.SetBcryptCost(bcrypt.MinCost); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
