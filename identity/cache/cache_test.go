package cache

import (
	"strconv"
	"sync"
	"testing"
)

func ckey(i int) CredentialDigest { return DigestOf([]byte(strconv.Itoa(i))) }

func TestCacheCapacityAndEviction(t *testing.T) {
	var evicted []int
	c := New(100, 1e9, func(_ CredentialDigest, v *int) { evicted = append(evicted, *v) })
	for i := range 100 {
		c.Add(ckey(i), i, 0)
	}
	if c.Len() != 100 || len(evicted) != 0 {
		t.Fatalf("full cache: len %d, evicted %v", c.Len(), evicted)
	}
	// Read every even entry: CLOCK must evict unread (odd) ones first.
	for i := 0; i < 100; i += 2 {
		if v, ok := c.Get(ckey(i), 0, 0); !ok || *v != i {
			t.Fatalf("Get(%d) = %v, %v", i, v, ok)
		}
	}
	for i := 100; i < 150; i++ {
		c.Add(ckey(i), i, 0)
	}
	if c.Len() != 100 || len(evicted) != 50 {
		t.Fatalf("after 50 more: len %d, %d evicted", c.Len(), len(evicted))
	}
	for _, v := range evicted {
		if v%2 == 0 {
			t.Fatalf("evicted %d, which was read; evicted %v", v, evicted)
		}
	}
	for i := 0; i < 100; i += 2 {
		if _, ok := c.Get(ckey(i), 0, 0); !ok {
			t.Fatalf("read entry %d was evicted", i)
		}
	}
}

func TestCacheExpiryReplaceRemovePurge(t *testing.T) {
	evictions := 0
	c := New(10, 100, func(CredentialDigest, *string) { evictions++ })
	c.Add(ckey(1), "a", 1000)
	if v, ok := c.Get(ckey(1), 1099, 0); !ok || *v != "a" {
		t.Fatalf("fresh entry: %v %v", v, ok)
	}
	if _, ok := c.Get(ckey(1), 1100, 0); ok {
		t.Fatal("entry served at its deadline")
	}
	if c.Len() != 0 || evictions != 1 {
		t.Fatalf("expired entry kept: len %d, evictions %d", c.Len(), evictions)
	}

	c.Add(ckey(2), "b", 0)
	c.Add(ckey(2), "B", 0)
	if v, _ := c.Get(ckey(2), 0, 0); c.Len() != 1 || *v != "B" || evictions != 1 {
		t.Fatalf("replace: len %d, value %q, evictions %d", c.Len(), *v, evictions)
	}
	c.Remove(ckey(2))
	c.Remove(ckey(2))
	if _, ok := c.Get(ckey(2), 0, 0); ok || c.Len() != 0 || evictions != 2 {
		t.Fatalf("remove: found %v, len %d, evictions %d", ok, c.Len(), evictions)
	}

	for i := range 10 {
		c.Add(ckey(i), "x", 0)
	}
	c.Purge()
	if c.Len() != 0 || evictions != 12 {
		t.Fatalf("purge: len %d, evictions %d", c.Len(), evictions)
	}
	for i := range 10 {
		if _, ok := c.Get(ckey(i), 0, 0); ok {
			t.Fatalf("entry %d survived Purge", i)
		}
	}
	c.Add(ckey(1), "again", 0) // usable after a purge
	if v, ok := c.Get(ckey(1), 0, 0); !ok || *v != "again" {
		t.Fatal("cache unusable after Purge")
	}
}

// TestCacheConcurrent runs readers against writers that add, evict and
// remove; -race checks the locking, the final count checks the bookkeeping.
func TestCacheConcurrent(t *testing.T) {
	c := New[int](64, 1e12, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := ckey((i * 7 * (w + 1)) % 500)
				switch i % 5 {
				case 0:
					c.Add(k, i, 0)
				case 1:
					c.Remove(k)
				default:
					if v, ok := c.Get(k, 0, uint64(w)); ok && *v < 0 {
						t.Error("bad value")
					}
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 64 {
		t.Fatalf("len %d over capacity", c.Len())
	}
	n := 0
	for i := range 500 {
		if _, ok := c.Get(ckey(i), 0, 0); ok {
			n++
		}
	}
	if n != c.Len() {
		t.Fatalf("Len %d, but %d entries found", c.Len(), n)
	}
}
