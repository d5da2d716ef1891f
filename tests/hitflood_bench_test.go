package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keylens/keylens/identity/hits"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// Fleet-scale ingestion, measured against the running binary over
// loopback. Benchmarks, not tests: nothing here asserts a speed. Each
// runs on SQLite and on PostgreSQL:
//
//	go test -run=NONE -bench='HitsFlood|AdminWritesDuringFlood|HitsFleet' -benchtime=1x -timeout 30m ./tests/

// floodStore starts keylens on store ("SQLite" or "PostgreSQL").
func floodStore(b *testing.B, store string, args ...string) *instance {
	dsn := ""
	if store == "PostgreSQL" {
		dsn = pgtest.Shared(b).NewDatabase(b)
	}
	return startKeylens(b, dsn, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey}, args...)
}

// floodBody is a POST /hits body of 10,000 series never seen before: 1,000
// new keys on 10 APIs, as a flood of new keys brings.
func floodBody(n int64) []byte {
	return hitsBody(hashKeys(fmt.Sprintf("%02x", n%256), 1000)[:1000], fmt.Sprint("flood", n/256), 10000, 1)
}

// unfolded is the series keylens has committed and not yet folded into
// its counters (keylens_analytics_unfolded_series).
func unfolded(in *instance) float64 {
	for _, line := range strings.Split(string(in.sidecar("GET", "/metrics", nil, nil).Body), "\n") {
		if v, ok := strings.CutPrefix(line, "keylens_analytics_unfolded_series "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	in.t.Fatal("/metrics lacks keylens_analytics_unfolded_series")
	return 0
}

// reportBacklog reports what a run left unfolded, and how long the store
// then took to fold it (at most a minute): whether it keeps up.
func reportBacklog(b *testing.B, in *instance) {
	b.ReportMetric(unfolded(in), "unfolded-at-end")
	start := time.Now()
	for unfolded(in) > 0 && time.Since(start) < time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	b.ReportMetric(time.Since(start).Seconds(), "fold-after-s")
}

// postUntilStored posts body until a 200, waiting for Retry-After's second
// fraction (50 ms) after each 503, as a writer does; it returns the time
// to the 200 from the first attempt, and the 503s met.
func postUntilStored(b *testing.B, p *hitPoster, url, id string, body []byte) (time.Duration, int) {
	t0 := time.Now()
	for refused := 0; ; refused++ {
		status, after := p.post(url, id, body)
		if status == 200 {
			return time.Since(t0), refused
		}
		if status != 503 || after == "" {
			b.Errorf("post %s: %d", id, status)
			return time.Since(t0), refused
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// flood runs posters writers, each posting 10,000-series batches (ids from
// next) until stop is closed; it reports the series committed and each
// batch's time to its 200.
func flood(b *testing.B, in *instance, posters int, next *atomic.Int64, stop chan struct{}) (series *atomic.Int64, refused *atomic.Int64, lat func() []time.Duration, wait func()) {
	p := &hitPoster{t: b, client: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: posters}}}
	series, refused = &atomic.Int64{}, &atomic.Int64{}
	var mu sync.Mutex
	var lats []time.Duration
	var wg sync.WaitGroup
	for range posters {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := next.Add(1)
				d, r := postUntilStored(b, p, in.SidecarURL, fmt.Sprint("flood-", n), floodBody(n))
				series.Add(10000)
				refused.Add(int64(r))
				mu.Lock()
				lats = append(lats, d)
				mu.Unlock()
			}
		})
	}
	return series, refused, func() []time.Duration { mu.Lock(); defer mu.Unlock(); return append([]time.Duration(nil), lats...) }, wg.Wait
}

// BenchmarkHitsFlood: 32 posters of 10,000 distinct series a batch over
// HTTP for 10 s (the saturation rate: distinct series committed per
// second); then batches arriving at half the rate required of a flood
// (halfRate), each sent when due whatever the others are doing, for 10 s:
// their time to acknowledgement.
func BenchmarkHitsFlood(b *testing.B) {
	// Half the 250,000 series a second a flood must reach. (Half the
	// rate measured would be more than the store folds a second: its
	// log would fill whatever the latency.)
	const halfRate = 125000
	for _, store := range []string{"SQLite", "PostgreSQL"} {
		b.Run(store, func(b *testing.B) {
			in := floodStore(b, store)
			var next atomic.Int64
			for range b.N {
				stop := make(chan struct{})
				start := time.Now()
				series, refused, lats, wait := flood(b, in, 32, &next, stop)
				time.Sleep(10 * time.Second)
				close(stop)
				wait()
				rate := float64(series.Load()) / time.Since(start).Seconds()
				l := lats()
				b.ReportMetric(rate, "series/s")
				b.ReportMetric(ms(percentile(l, 99)), "flood-p99-ack-ms")
				b.ReportMetric(float64(refused.Load()), "flood-503s")

				// Half the rate, open loop: one batch every interval.
				interval := time.Duration(float64(time.Second) * 10000 / halfRate)
				p := &hitPoster{t: b, client: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
				var mu sync.Mutex
				var half []time.Duration
				var halfRefused atomic.Int64
				var wg sync.WaitGroup
				tick := time.NewTicker(interval)
				for end := time.Now().Add(10 * time.Second); time.Now().Before(end); <-tick.C {
					n := next.Add(1)
					wg.Go(func() {
						d, r := postUntilStored(b, p, in.SidecarURL, fmt.Sprint("half-", n), floodBody(n))
						halfRefused.Add(int64(r))
						mu.Lock()
						half = append(half, d)
						mu.Unlock()
					})
				}
				tick.Stop()
				wg.Wait()
				b.ReportMetric(ms(percentile(half, 50)), "half-p50-ack-ms")
				b.ReportMetric(ms(percentile(half, 99)), "half-p99-ack-ms")
				b.ReportMetric(float64(halfRefused.Load()), "half-503s")
				reportBacklog(b, in)
			}
		})
	}
}

// BenchmarkAdminWritesDuringFlood: 16 posters flood /hits with
// 10,000-series batches for 15 s while one admin client creates
// developers (POST /api/portal/developers) one after another: the admin
// writes' latency, and theirs without a flood just before.
func BenchmarkAdminWritesDuringFlood(b *testing.B) {
	for _, store := range []string{"SQLite", "PostgreSQL"} {
		b.Run(store, func(b *testing.B) {
			in := floodStore(b, store)
			var next atomic.Int64
			adminWrites := func(prefix string, d time.Duration) []time.Duration {
				var lat []time.Duration
				start := time.Now()
				for j := 0; time.Since(start) < d; j++ {
					t0 := time.Now()
					req, _ := http.NewRequest("POST", in.AdminURL+"/api/portal/developers", strings.NewReader(fmt.Sprintf(`{"email":"%s-%d@example.com"}`, prefix, j)))
					req.Header.Set("Authorization", in.Key)
					res, err := client.Do(withTest(req, b))
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Fatalf("admin write: %d", res.StatusCode)
					}
					lat = append(lat, time.Since(t0))
				}
				return lat
			}
			for i := range b.N {
				// The same writes without a flood first: what the
				// machine gives them at its load of the moment.
				quiet := adminWrites(fmt.Sprint("quiet-", i), 5*time.Second)
				b.ReportMetric(ms(percentile(quiet, 99)), "no-flood-admin-p99-ms")
				stop := make(chan struct{})
				series, _, _, wait := flood(b, in, 16, &next, stop)
				start := time.Now()
				admin := adminWrites(fmt.Sprint("flood-", i), 15*time.Second)
				close(stop)
				wait()
				b.ReportMetric(float64(series.Load())/time.Since(start).Seconds(), "series/s")
				b.ReportMetric(float64(len(admin)), "admin-writes")
				b.ReportMetric(ms(percentile(admin, 50)), "admin-p50-ms")
				b.ReportMetric(ms(percentile(admin, 99)), "admin-p99-ms")
				b.ReportMetric(ms(percentile(admin, 100)), "admin-max-ms")
			}
		})
	}
}

// BenchmarkHitsFleet: 100 gateways, each a plugin's Counter and Batcher
// (identity/hits) with 2,000 active keys of its own, every key hit
// continuously, flushing every second to the sidecar over HTTP as the
// plugin does, for 20 s: 200,000 series a second offered. The lag of a
// flush is the time from the start of the one before it (when its hits
// began to be counted) to its acknowledgement: the oldest hit's wait.
func BenchmarkHitsFleet(b *testing.B) {
	for _, store := range []string{"SQLite", "PostgreSQL"} {
		b.Run(store, func(b *testing.B) {
			in := floodStore(b, store)
			const gateways, keys, interval = 100, 2000, time.Second
			httpc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: gateways}}
			send := func(ctx context.Context, id string, body []byte) error {
				req, err := http.NewRequestWithContext(ctx, "POST", in.SidecarURL+"/hits", bytes.NewReader(body))
				if err != nil {
					return hits.Refused(err)
				}
				req.Header.Set("X-Keylens-Batch", id)
				res, err := httpc.Do(req)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				io.Copy(io.Discard, res.Body)
				switch res.StatusCode {
				case 200:
					return nil
				case 503:
					wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
					return hits.RetryAfter(time.Duration(wait)*time.Second, errors.New("busy"))
				default:
					return hits.Refused(fmt.Errorf("status %d", res.StatusCode))
				}
			}
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				var mu sync.Mutex
				var lags []time.Duration
				var failures atomic.Int64
				var flushes atomic.Int64
				var wg sync.WaitGroup
				for g := range gateways {
					c := hits.NewCounter(2 * keys)
					bt := hits.NewBatcher(c, send)
					names := make([]string, keys)
					for k := range names {
						names[k] = fmt.Sprintf("%04x%04x", g, k)
					}
					wg.Go(func() { // the gateway's traffic: every key, again and again
						for ctx.Err() == nil {
							now := time.Now().UnixNano()
							for _, k := range names {
								c.Record(k, "api", now, 200, 1, time.Millisecond)
							}
							time.Sleep(100 * time.Millisecond)
						}
					})
					wg.Go(func() { // the plugin's flush loop
						time.Sleep(time.Duration(g) * interval / gateways) // gateways do not start in step
						prev := time.Now()
						for ctx.Err() == nil {
							time.Sleep(interval)
							start := time.Now()
							if err := bt.Flush(ctx); err != nil {
								if ctx.Err() == nil { // not the run's end
									failures.Add(1)
								}
								continue // the next flush sends it again, later
							}
							flushes.Add(1)
							mu.Lock()
							lags = append(lags, time.Since(prev))
							mu.Unlock()
							prev = start
						}
					})
				}
				wg.Wait()
				cancel()
				// Every flush carries each of the gateway's keys once.
				b.ReportMetric(float64(flushes.Load()*keys)/20, "series/s")
				b.ReportMetric(ms(percentile(lags, 50)), "lag-p50-ms")
				b.ReportMetric(ms(percentile(lags, 99)), "lag-p99-ms")
				b.ReportMetric(ms(percentile(lags, 100)), "lag-max-ms")
				b.ReportMetric(float64(failures.Load()), "failed-flushes")
				reportBacklog(b, in)
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
