package cache

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

type resolved struct {
	hash, dev string
	exp       int64 // Unix seconds
}

var errUnknown = errors.New("unknown")

func newResolutions() *Resolutions[resolved] {
	return NewResolutions(ResolutionsOptions[resolved]{Size: 100, TTL: 60e9, NegativeTTL: 2e9,
		Owner:           func(r *resolved) (string, string) { return r.hash, r.dev },
		Expires:         func(r *resolved) int64 { return r.exp },
		RefusesInactive: true,
		Refusals:        []error{errUnknown},
	})
}

const t0 = int64(1_700_000_000e9) // UnixNano

// A found value is served until the cache's TTL or the credential's own
// expiry, whichever is first; a refusal for the shorter negative TTL.
func TestResolutionsServeFoundAndRefused(t *testing.T) {
	r := newResolutions()
	r.add(ckey(1), resolved{"k1", "ada", 0}, t0, r.gen())
	r.add(ckey(2), resolved{"k2", "ada", t0/1e9 + 5}, t0, r.gen()) // a JWT expiring in 5 s
	r.refuse(ckey(3), errUnknown, t0, r.gen())

	if v, err, ok := r.Get(ckey(1), t0+10e9, 0); !ok || err != nil || v.hash != "k1" {
		t.Errorf("found value: %v %v %v", v, err, ok)
	}
	if v, _, ok := r.Get(ckey(2), t0+4e9, 0); !ok || v.hash != "k2" {
		t.Error("an unexpired credential was not served")
	}
	if _, _, ok := r.Get(ckey(2), t0+5e9, 0); ok {
		t.Error("an expired credential was served")
	}
	if r.Len() != 1 {
		t.Errorf("the expired credential stays cached: %d values", r.Len())
	}
	if _, _, ok := r.Get(ckey(1), t0+61e9, 0); ok {
		t.Error("found value served past the TTL")
	}
	if v, err, ok := r.Get(ckey(3), t0+1e9, 0); !ok || v != nil || err != errUnknown {
		t.Errorf("refusal: %v %v %v", v, err, ok)
	}
	if _, _, ok := r.Get(ckey(3), t0+3e9, 0); ok {
		t.Error("refusal served past the negative TTL")
	}
	if _, _, ok := r.Get(ckey(4), t0, 0); ok {
		t.Error("a credential never resolved was served")
	}
}

// An answer fetched before an invalidation is not cached: it may predate
// the change.
func TestResolutionsDropFillsThatAChangeOvertook(t *testing.T) {
	r := newResolutions()
	gen := r.gen()
	r.Invalidate("k9", "", false) // a change lands while the fill is asked
	if r.add(ckey(1), resolved{"k1", "ada", 0}, t0, gen) {
		t.Error("a value fetched before a change stayed cached")
	}
	r.refuse(ckey(2), errUnknown, t0, gen)
	if _, _, ok := r.Get(ckey(2), t0, 0); ok {
		t.Error("a refusal fetched before a change stayed cached")
	}
}

// Invalidate follows identity.Change.Stale: a key hash drops that key, a
// developer every key of theirs, and a new key or a changed developer
// every refusal (it may have become an identity).
func TestResolutionsInvalidate(t *testing.T) {
	r := newResolutions()
	fill := func() {
		r.add(ckey(1), resolved{"k1", "ada", 0}, t0, r.gen())
		r.add(ckey(2), resolved{"k2", "ada", 0}, t0, r.gen())
		r.add(ckey(3), resolved{"k3", "bob", 0}, t0, r.gen())
		r.refuse(ckey(4), errUnknown, t0, r.gen())
	}
	has := func(i int) bool { _, _, ok := r.Get(ckey(i), t0, 0); return ok }
	for _, tt := range []struct {
		name      string
		hash, dev string
		newKey    bool
		want      [4]bool
	}{
		{"a key changed", "k1", "", false, [4]bool{false, true, true, true}},
		{"a developer changed", "", "ada", false, [4]bool{false, false, true, false}},
		{"a key was added", "k5", "", true, [4]bool{true, true, true, false}},
	} {
		r.Purge()
		fill()
		r.Invalidate(tt.hash, tt.dev, tt.newKey)
		if got := [4]bool{has(1), has(2), has(3), has(4)}; got != tt.want {
			t.Errorf("%s: cached %v, want %v", tt.name, got, tt.want)
		}
	}
	r.Purge()
	if has(1) || has(3) || has(4) {
		t.Error("Purge left something cached")
	}

	// Where refusals are only unknown keys (the sidecar caches an
	// inactive developer's key as found), a changed developer keeps them:
	// they are what makes a repeated guess cost nothing.
	r = NewResolutions(ResolutionsOptions[resolved]{Size: 100, TTL: 60e9, NegativeTTL: 2e9,
		Owner:   func(r *resolved) (string, string) { return r.hash, r.dev },
		Expires: func(r *resolved) int64 { return r.exp },
	})
	fill()
	r.Invalidate("", "ada", false)
	if got := [4]bool{has(1), has(2), has(3), has(4)}; got != [4]bool{false, false, true, true} {
		t.Errorf("without RefusesInactive, a developer change: cached %v", got)
	}
}

// A refusal fetched before an invalidation never stays cached after it,
// however the two interleave.
func TestResolutionsRefuseRacesInvalidate(t *testing.T) {
	r := newResolutions()
	for i := range 20000 {
		k := ckey(i)
		gen := r.gen()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); r.refuse(k, errUnknown, t0, gen) }()
		go func() { defer wg.Done(); r.Invalidate("", "", true) }()
		wg.Wait()
		if _, _, ok := r.Get(k, t0, 0); ok {
			t.Fatalf("round %d: a refusal from before a new key stayed cached", i)
		}
	}
}

func TestResolutionsGetAllocatesNothing(t *testing.T) {
	r := newResolutions()
	r.add(ckey(1), resolved{"k1", "ada", 0}, t0, r.gen())
	r.refuse(ckey(2), errUnknown, t0, r.gen())
	if n := testing.AllocsPerRun(100, func() {
		r.Get(ckey(1), t0, 0)
		r.Get(ckey(2), t0, 0)
		r.Get(ckey(3), t0, 0)
	}); n != 0 {
		t.Errorf("Get allocates %v times", n)
	}
}

// fetcher counts its calls and answers v or err, running during (if not
// nil) while it "asks the source".
type fetcher struct {
	calls  int
	v      resolved
	err    error
	during func()
}

func (f *fetcher) fetch() (*resolved, error) {
	f.calls++
	if f.during != nil {
		f.during()
	}
	if f.err != nil {
		return nil, f.err
	}
	v := f.v
	return &v, nil
}

// Resolve fetches on a miss only, caches what it found for the TTL and a
// refusal for the negative TTL, and caches no failure.
func TestResolutionsResolve(t *testing.T) {
	r := newResolutions()
	found := &fetcher{v: resolved{"k1", "ada", 0}}
	for i, at := range []int64{t0, t0 + 59e9} {
		v, hit, err := r.Resolve(ckey(1), at, 0, found.fetch)
		if err != nil || v == nil || v.hash != "k1" || hit != (i > 0) || found.calls != 1 {
			t.Fatalf("found, call %d: %v %v %v after %d fetches", i, v, hit, err, found.calls)
		}
	}
	if _, hit, _ := r.Resolve(ckey(1), t0+61e9, 0, found.fetch); hit || found.calls != 2 {
		t.Errorf("a found value was served past the TTL (%d fetches)", found.calls)
	}

	wrapped := fmt.Errorf("no such key: %w", errUnknown)
	refused := &fetcher{err: wrapped}
	if v, hit, err := r.Resolve(ckey(2), t0, 0, refused.fetch); v != nil || hit || err != wrapped {
		t.Errorf("refusal, fetched: %v %v %v", v, hit, err)
	}
	if v, hit, err := r.Resolve(ckey(2), t0+1e9, 0, refused.fetch); v != nil || !hit || err != errUnknown || refused.calls != 1 {
		t.Errorf("refusal, cached: %v %v %v after %d fetches", v, hit, err, refused.calls)
	}
	if _, hit, _ := r.Resolve(ckey(2), t0+2e9, 0, refused.fetch); hit || refused.calls != 2 {
		t.Errorf("a refusal was served past the negative TTL (%d fetches)", refused.calls)
	}

	failed := &fetcher{err: errors.New("store down")}
	for i := 0; i < 2; i++ {
		if v, hit, err := r.Resolve(ckey(3), t0, 0, failed.fetch); v != nil || hit || err != failed.err {
			t.Errorf("failure: %v %v %v", v, hit, err)
		}
	}
	if failed.calls != 2 {
		t.Errorf("a failure was cached: %d fetches", failed.calls)
	}
}

// Resolve caches nothing it fetched while a change invalidated the cache:
// the answer may predate the change.
func TestResolutionsResolveHonoursTheGeneration(t *testing.T) {
	r := newResolutions()
	change := func() { r.Invalidate("k9", "", false) }
	for _, f := range []*fetcher{
		{v: resolved{"k1", "ada", 0}, during: change},
		{err: errUnknown, during: change},
	} {
		v, hit, err := r.Resolve(ckey(1), t0, 0, f.fetch)
		if hit || (err == nil) == (v == nil) {
			t.Fatalf("fetched: %v %v %v", v, hit, err)
		}
		f.during = nil
		if _, hit, _ := r.Resolve(ckey(1), t0, 0, f.fetch); hit || f.calls != 2 {
			t.Errorf("an answer (err %v) fetched across a change was cached", f.err)
		}
		r.Purge()
	}
}

// A hit allocates nothing.
func TestResolutionsResolveHitAllocatesNothing(t *testing.T) {
	r := newResolutions()
	f := &fetcher{v: resolved{"k1", "ada", 0}}
	r.Resolve(ckey(1), t0, 0, f.fetch)
	if n := testing.AllocsPerRun(100, func() { r.Resolve(ckey(1), t0, 0, f.fetch) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}
