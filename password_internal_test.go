package keylens

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestDummyHashHasTheConfiguredCost: an unknown account costs what a known
// one does, whatever --bcrypt-cost says.
func TestDummyHashHasTheConfiguredCost(t *testing.T) {
	defer SetBcryptCost(BcryptCost())
	for _, cost := range []int{bcrypt.MinCost, 6, DefaultBcryptCost} {
		if err := SetBcryptCost(cost); err != nil {
			t.Fatal(err)
		}
		if c, err := bcrypt.Cost(dummyHash(BcryptCost())); err != nil || c != cost {
			t.Errorf("dummy hash cost %d (%v), want %d", c, err, cost)
		}
		h, err := HashPassword("a-password")
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := bcrypt.Cost([]byte(h)); c != cost || NeedsRehash(h) {
			t.Errorf("a new hash has cost %d, want %d", c, cost)
		}
	}
	if SetBcryptCost(3) == nil || SetBcryptCost(32) == nil {
		t.Error("a cost outside bcrypt's range was accepted")
	}
}
