package cache

import (
	"sync"
	"testing"
)

type cred struct{ hash, dev string }

func newTracked(size int) *Tracked[cred] {
	return NewTracked(size, 1e12, func(c *cred) (string, string) { return c.hash, c.dev }, nil)
}

func add(t *testing.T, c *Tracked[cred], i int, hash, dev string) {
	t.Helper()
	if !c.Add(ckey(i), cred{hash, dev}, 0, c.Gen()) {
		t.Fatalf("credential %d not cached", i)
	}
}

func cached(c *Tracked[cred], i int) bool {
	_, ok := c.Get(ckey(i), 0, 0)
	return ok
}

// Invalidation drops exactly the credentials of a key hash, or of every
// key of a developer.
func TestTrackedInvalidatesWhatAChangeTouches(t *testing.T) {
	c := newTracked(100)
	add(t, c, 1, "k1", "ada") // a raw key
	add(t, c, 2, "k1", "ada") // the same key as Bearer
	add(t, c, 3, "k2", "ada") // Ada's other key
	add(t, c, 4, "k3", "bob") // Bob's key
	c.InvalidateKey("k1")
	if cached(c, 1) || cached(c, 2) || !cached(c, 3) || !cached(c, 4) {
		t.Fatalf("after invalidating k1: %v %v %v %v", cached(c, 1), cached(c, 2), cached(c, 3), cached(c, 4))
	}
	add(t, c, 1, "k1", "ada")
	c.InvalidateDeveloper("ada")
	if cached(c, 1) || cached(c, 3) || !cached(c, 4) || c.Len() != 1 {
		t.Fatalf("after invalidating ada: %v %v %v, len %d", cached(c, 1), cached(c, 3), cached(c, 4), c.Len())
	}
	c.InvalidateDeveloper("nobody")
	c.InvalidateKey("nothing")
	if !cached(c, 4) {
		t.Fatal("invalidating what is not cached dropped something")
	}
}

// An evicted credential leaves the index; what the index holds never
// outgrows the cache.
func TestTrackedIndexFollowsEvictions(t *testing.T) {
	c := newTracked(10)
	for i := range 1000 {
		add(t, c, i, "k"+string(rune('a'+i%26))+string(rune('a'+i/26%26)), "dev")
	}
	c.mu.Lock()
	var n int
	for _, keys := range c.byHash {
		n += len(keys)
	}
	hashes := len(c.byDev["dev"])
	c.mu.Unlock()
	if c.Len() != 10 || n != 10 || hashes != 10 {
		t.Fatalf("cache %d, indexed credentials %d, developer's hashes %d; want 10 each", c.Len(), n, hashes)
	}
	c.Purge()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byHash) != 0 || len(c.byDev) != 0 {
		t.Fatalf("after Purge the index holds %d hashes, %d developers", len(c.byHash), len(c.byDev))
	}
}

// A value fetched before an invalidation is not cached after it.
func TestTrackedRefusesFillsOlderThanAnInvalidation(t *testing.T) {
	c := newTracked(100)
	for name, invalidate := range map[string]func(){
		"key": func() { c.InvalidateKey("unrelated") }, "developer": func() { c.InvalidateDeveloper("x") },
		"purge": c.Purge, "elsewhere": c.Invalidated,
	} {
		gen := c.Gen()
		invalidate()
		if c.Add(ckey(1), cred{"k1", "ada"}, 0, gen) || cached(c, 1) {
			t.Errorf("%s: a fill begun before the invalidation was cached", name)
		}
	}
}

// Fills racing invalidations of their own key never leave a stale value.
func TestTrackedFillRacingInvalidation(t *testing.T) {
	c := newTracked(1000)
	for round := range 200 {
		var wg sync.WaitGroup
		gen := c.Gen()
		wg.Add(2)
		go func() { defer wg.Done(); c.Add(ckey(round), cred{"k", "ada"}, 0, gen) }()
		go func() { defer wg.Done(); c.InvalidateKey("k") }()
		wg.Wait()
		if cached(c, round) {
			t.Fatalf("round %d: a fill begun before InvalidateKey survived it", round)
		}
	}
}
