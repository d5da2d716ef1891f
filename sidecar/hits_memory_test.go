package sidecar_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/sidecar"
)

// TestHeapAfterAFlood: once a flood of POST /hits is over (16 writers on
// keep-alive connections, 10,000 new series a batch, committed to SQLite),
// and its hits are folded into the counters, the heap is back within twice
// its size before it: nothing keeps the flood's batches or bodies, neither
// the committer's queue nor the connections, which stay open. Heap sizes,
// not times, are compared, each after a full collection.
func TestHeapAfterAFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the flood takes seconds")
	}
	f := newFixture(t)
	c := analytics.NewCommitter(f.db, analytics.CommitterOptions{})
	defer c.Close(context.Background())
	addr := serveOnLoopback(t, sidecar.Config{Resolver: f.r, Hits: c}, nil)
	const writers = 16
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
	post := func(n, series int) {
		var body bytes.Buffer
		body.WriteByte('[')
		for i := range series {
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"key":"%02x%06x","api_id":"api-%d","code":200}`, n%256, i, n/256)
		}
		body.WriteByte(']')
		for {
			res, err := client.Post("http://"+addr+"/hits", "application/json", bytes.NewReader(body.Bytes()))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
			if res.StatusCode != 503 {
				t.Errorf("POST /hits: %d", res.StatusCode)
				return
			}
		}
	}
	heap := func() uint64 {
		debug.FreeOSMemory() // twice: what sync.Pools held goes at the second
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	// Before: every writer's connection open after a batch of the usual
	// size (700 series: bodies of some 40 kB), the per-key metrics full
	// (they keep the 10,000 most recently hit keys, by design).
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() { post(w, 700) })
	}
	wg.Wait()
	before := heap()
	for w := range writers {
		wg.Go(func() { post(writers+w, 10000) })
	}
	wg.Wait()
	// The flood is over once its hits are folded into the counters (the
	// store's compactor works through its log meanwhile). How soon that
	// is, is measured by the flood benchmarks (tests/hitflood_bench_test.go),
	// not here: under the race detector, beside other packages' tests, it
	// can take more than a minute.
	flooded := time.Now()
	for f.db.HitBacklog() > 0 {
		if time.Since(flooded) > 5*time.Minute {
			t.Fatalf("%d series still unfolded 5 minutes after the flood", f.db.HitBacklog())
		}
		time.Sleep(10 * time.Millisecond)
	}
	folded := time.Since(flooded)
	after := heap()
	t.Logf("heap %.1f MiB before the flood of %d series, %.1f MiB after (folded in %s)",
		float64(before)/(1<<20), writers*10000, float64(after)/(1<<20), folded.Round(time.Millisecond))
	if after > 2*before {
		t.Errorf("heap %d bytes after the flood, more than twice the %d before", after, before)
	}
}
