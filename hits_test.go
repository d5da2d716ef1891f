package keylens_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keylens/keylens"
)

// basicUsers answers ResolveBasicUser from a map, and counts the lookups;
// fail, when set, is what every lookup answers.
type basicUsers struct {
	keylens.CredentialService
	hashes  map[string]string
	lookups int
	fail    error
}

func (b *basicUsers) ResolveBasicUser(_ context.Context, username string) (*keylens.Credential, error) {
	b.lookups++
	if b.fail != nil {
		return nil, b.fail
	}
	if h, ok := b.hashes[username]; ok {
		return &keylens.Credential{Key: keylens.Key{Hash: h, BasicUsername: username}}, nil
	}
	return nil, keylens.Errorf(keylens.ENOTFOUND, "no such user")
}

// TestHitKeyHash: a hit's key is a hash, a raw key, or a Basic key's
// username; gateway-shaped keys and hashes are never looked up.
func TestHitKeyHash(t *testing.T) {
	ctx := context.Background()
	stored := keylens.KeyFor("5e9d9544a1dcd60001d0ed20", "ffeLySpZR5", keylens.HashMurmur64)
	users := &basicUsers{hashes: map[string]string{"ffeLySpZR5": keylens.HashKey(stored)}}
	for _, c := range []struct {
		key, want string
		lookups   int
	}{
		{"add2b342", "add2b342", 0},
		{jsonKey, "cac572e018c60de0", 0},
		{legacyKey, "4beaa90b", 0},
		{stored, keylens.HashKey(stored), 0}, // the gateway's name for the Basic key
		{"ffeLySpZR5", keylens.HashKey(stored), 1},
		{"nobody", keylens.HashKey("nobody"), 1},
	} {
		users.lookups = 0
		got, err := keylens.HitKeyHash(ctx, c.key, users)
		if err != nil || got != c.want || users.lookups != c.lookups {
			t.Errorf("HitKeyHash(%q) = %q, %v after %d lookups; want %q after %d", c.key, got, err, users.lookups, c.want, c.lookups)
		}
	}
	if got, err := keylens.HitKeyHash(ctx, "ffeLySpZR5", nil); err != nil || got != keylens.HashKey("ffeLySpZR5") {
		t.Errorf("without a store: %q, %v", got, err)
	}
	down := errors.New("store down")
	if _, err := keylens.HitKeyHash(ctx, "ffeLySpZR5", &basicUsers{fail: down}); !errors.Is(err, down) {
		t.Errorf("a failed lookup: %v, want it passed on (the hits are not counted for the wrong key)", err)
	}
}
