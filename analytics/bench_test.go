package analytics_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/analytics"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// distinct returns n series of n distinct keys, as a flood of new keys
// would bring.
func distinct(n, offset int) []keylens.HitDelta {
	out := make([]keylens.HitDelta, n)
	for i := range out {
		out[i] = series(fmt.Sprintf("%016x", uint64(i+offset)*0x9e3779b97f4a7c15), "api", 200+i%3*100, 3)
	}
	return out
}

func stores(b *testing.B) map[string]func(b *testing.B) *sqlstore.DB {
	return map[string]func(b *testing.B) *sqlstore.DB{
		"SQLite": func(b *testing.B) *sqlstore.DB { return openStore(b) },
		"PostgreSQL": func(b *testing.B) *sqlstore.DB {
			db, err := sqlstore.Open(context.Background(), pgtest.Shared(b).NewDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return db
		},
	}
}

// BenchmarkCommit100k commits 100,000 distinct series in one call: what a
// flood of new keys costs the store (hourly rows and the daily rollup).
func BenchmarkCommit100k(b *testing.B) {
	for name, open := range stores(b) {
		b.Run(name, func(b *testing.B) {
			db := open(b)
			b.StopTimer()
			for i := range b.N {
				s := distinct(100000, i*100000)
				b.StartTimer()
				if _, err := db.AddHits(context.Background(), []keylens.HitBatch{{ID: fmt.Sprint("b", i), Series: s}}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
			}
		})
	}
}

// BenchmarkCommitTx10k commits one POST /hits worth of distinct series (10,000):
// how long one transaction holds the store's writer.
func BenchmarkCommitTx10k(b *testing.B) {
	for name, open := range stores(b) {
		b.Run(name, func(b *testing.B) {
			db := open(b)
			b.StopTimer()
			for i := range b.N {
				s := distinct(10000, i*10000)
				b.StartTimer()
				if _, err := db.AddHits(context.Background(), []keylens.HitBatch{{ID: fmt.Sprint("b", i), Series: s}}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
			}
		})
	}
}

// BenchmarkGroupCommit: 32 writers each post batches of 1,000 series (of
// 100 keys: a gateway's busy keys) through one committer for the benchmark
// time; reports hits/s and the p99 time to acknowledge a batch.
func BenchmarkGroupCommit(b *testing.B) {
	for name, open := range stores(b) {
		b.Run(name, func(b *testing.B) {
			db := open(b)
			c := analytics.NewCommitter(db, analytics.CommitterOptions{})
			defer closeCommitter(b, c)
			const writers, size = 32, 1000
			var mu sync.Mutex
			var lat []time.Duration
			var next int64
			start := time.Now()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					s := make([]keylens.HitDelta, size)
					for i := range s {
						s[i] = series(fmt.Sprintf("w%02d-key%03d", w, i%100), fmt.Sprint("api", i/100), 200, 1)
					}
					for {
						mu.Lock()
						n := next
						next++
						mu.Unlock()
						if n >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := c.AddHits(context.Background(), []keylens.HitBatch{{ID: fmt.Sprint("b", n), Series: s}}); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(t0)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			slices.Sort(lat)
			b.ReportMetric(float64(b.N*size)/elapsed.Seconds(), "hits/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ack-ms")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ack-ms")
		})
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
	batch := make([]keylens.HitDelta, 0, 50000)
	flush := func() {
		if _, err := db.AddHits(ctx, []keylens.HitBatch{{Series: batch}}); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for k := range keys {
		for h := range hours {
			hour := start.Unix()/3600 + int64(h)
			key := fmt.Sprintf("%016x", k)
			batch = append(batch,
				keylens.HitDelta{KeyHash: key, APIID: "api", Hour: hour, Code: 200, Hits: 10, Success: 10, LastHit: hour * 3600e9},
				keylens.HitDelta{KeyHash: key, APIID: "api", Hour: hour, Code: 500, Hits: 1, Errors: 1, LastHit: hour * 3600e9})
			if len(batch) == cap(batch) {
				flush()
			}
		}
	}
	flush()
	q := keylens.HitQuery{From: start, To: start.AddDate(1, 0, 0), Res: keylens.ResDay}
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

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}
