package analytics_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/portalstore"
	"github.com/keylens/keylens/portalstore/sqlstore"
	"github.com/keylens/keylens/portalstore/sqlstore/pgtest"
)

// BenchmarkRecordExisting records hits of existing series from every
// goroutine, each walking the 1,000 series from its own offset, as a busy
// gateway's keys would. Run with -cpu 1,2 to see it scale.
func BenchmarkRecordExisting(b *testing.B) {
	rec := analytics.NewRecorder(0)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
		rec.Record(keys[i], "api", day, 200, -1)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(389))
		for pb.Next() {
			rec.Record(keys[i%len(keys)], "api", day, 200, time.Millisecond)
			i++
		}
	})
}

// BenchmarkFlush1M flushes 1,000,000 hits over 10,000 keys (5 APIs, 3
// status codes: 30,000 series, as key i always meets API i mod 5) into SQLite.
func BenchmarkFlush1M(b *testing.B) {
	for range b.N {
		b.StopTimer()
		db := openStore(b)
		rec := analytics.NewRecorder(0)
		f := analytics.NewFlusher(rec, db, analytics.FlusherOptions{})
		codes := []int{200, 404, 500}
		for i := range 1000000 {
			rec.Record(fmt.Sprintf("%016x", i%10000), fmt.Sprint("api", i%5), day, codes[i%3], -1)
		}
		b.StartTimer()
		if err := f.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAggregateYear queries 10 keys at res=day over a year, with a
// year of hourly data (two status codes an hour) for 1,000 keys stored.
// Seeding takes a few minutes; it reports per-query latency percentiles.
func BenchmarkAggregateYear(b *testing.B) {
	db := openStore(b)
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const keys, hours = 1000, 365 * 24
	ctx := context.Background()
	batch := make([]portalstore.HitDelta, 0, 50000)
	flush := func() {
		if err := db.AddHits(ctx, "", batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for k := range keys {
		for h := range hours {
			hour := start.Unix()/3600 + int64(h)
			key := fmt.Sprintf("%016x", k)
			batch = append(batch,
				portalstore.HitDelta{KeyHash: key, APIID: "api", Hour: hour, Code: 200, Hits: 10, Success: 10, LastHit: hour * 3600e9},
				portalstore.HitDelta{KeyHash: key, APIID: "api", Hour: hour, Code: 500, Hits: 1, Errors: 1, LastHit: hour * 3600e9})
			if len(batch) == cap(batch) {
				flush()
			}
		}
	}
	flush()
	q := portalstore.HitQuery{From: start, To: start.AddDate(1, 0, 0), Res: portalstore.ResDay}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		q.Keys = q.Keys[:0]
		for j := range 10 {
			q.Keys = append(q.Keys, fmt.Sprintf("%016x", (i*37+j*101)%keys))
		}
		t0 := time.Now()
		rows, err := db.QueryHits(ctx, q)
		lat = append(lat, time.Since(t0))
		if err != nil || len(rows) != 365 || rows[0].Hits != 10*24*11 {
			b.Fatalf("%d rows, first %+v, %v", len(rows), rows[0], err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkFlushTwoWritersPostgreSQL: two sidecars' flushers, each with
// 500,000 hits over 5,000 keys (15,000 series), flush into one PostgreSQL
// database at the same time; reports stored hits per second.
func BenchmarkFlushTwoWritersPostgreSQL(b *testing.B) {
	cluster := pgtest.Shared(b)
	for range b.N {
		b.StopTimer()
		db, err := sqlstore.Open(context.Background(), cluster.NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		var flushers []*analytics.Flusher
		for w := range 2 {
			rec := analytics.NewRecorder(0)
			codes := []int{200, 404, 500}
			for i := range 500000 {
				rec.Record(fmt.Sprintf("%016x", i%5000+w*5000), "api", day, codes[i%3], -1)
			}
			flushers = append(flushers, analytics.NewFlusher(rec, db, analytics.FlusherOptions{}))
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for _, f := range flushers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.Flush(context.Background()); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(1e6/time.Since(start).Seconds(), "hits/s")
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}
