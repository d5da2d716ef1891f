package tests

import (
	"github.com/keylens/keylens/sqlstore/pgtest"

	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The hit pipeline end to end: a 200 from POST /hits means the hits are
// committed, whatever happens to the process next, and a batch sent again
// under its X-Keylens-Batch id counts once.

// hitPoster posts batches to one sidecar. Its client has no keep-alive
// across a restart to worry about: each test makes its own.
type hitPoster struct {
	t      testing.TB
	client *http.Client
}

func newHitPoster(t testing.TB) *hitPoster {
	return &hitPoster{t: t, client: &http.Client{Timeout: 60 * time.Second, Transport: contractTransport}}
}

// post sends body under batch id; it returns the status (0 when no answer
// came: the process died or refused the connection) and Retry-After.
func (p *hitPoster) post(sidecar, id string, body []byte) (int, string) {
	req, err := http.NewRequest("POST", sidecar+"/hits", bytes.NewReader(body))
	if err != nil {
		p.t.Error(err)
		return 0, ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Keylens-Batch", id)
	res, err := p.client.Do(withTest(req, p.t))
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, res.Header.Get("Retry-After")
}

// hitsBody is a POST /hits body of n elements for keys[i%len(keys)] on
// APIs prefix-0 ... prefix-(n/len(keys)), each of count hits: n distinct
// series.
func hitsBody(keys []string, prefix string, n, count int) []byte {
	// Appended, not formatted: the floods build bodies as fast as the
	// server takes them, on the same CPUs.
	b := make([]byte, 0, n*(len(keys[0])+len(prefix)+60))
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(append(b, `{"key":`...), keys[i%len(keys)])
		b = strconv.AppendInt(append(append(append(b, `,"api_id":"`...), prefix...), '-'), int64(i/len(keys)), 10)
		b = strconv.AppendInt(append(b, `","code":`...), int64(200+i%2*300), 10)
		b = append(strconv.AppendInt(append(b, `,"count":`...), int64(count), 10), '}')
	}
	return append(b, ']')
}

// storedHits sums the hits of keys from yesterday to tomorrow, as the
// aggregate endpoint reports them.
func storedHits(t testing.TB, in *instance, keys []string) int64 {
	t.Helper()
	now := time.Now().UTC()
	from, to := now.AddDate(0, 0, -1).Format("2/1/2006"), now.AddDate(0, 0, 1).Format("2/1/2006")
	r := in.do("GET", "/api/activity/keys/aggregate/"+strings.Join(keys, ",")+"/"+from+"/"+to+"?p=-1", "")
	if r.Status != 200 {
		t.Fatalf("aggregate: %d %s", r.Status, r.Body)
	}
	var n int64
	for _, row := range decodeAs[hitList](t, r).Data {
		n += row.Hits
	}
	return n
}

func hashKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%06x", prefix, i) // 8 hex characters: a murmur32 key hash
	}
	return keys
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[(len(d)-1)*p/100]
}

// TestHitsFloodKeepsAdminWritesMoving: 40 POSTs of 10,000 distinct series
// each, 8 at a time, while an admin loop creates developers. Every admin
// write answers, every batch is acknowledged (after 503s when the pipeline
// is behind, as a writer retries them) and stored exactly once.
func TestHitsFloodKeepsAdminWritesMoving(t *testing.T) {
	in := startDefault(t)
	keys := hashKeys("f1", 10)
	const posts, size = 40, 10000
	stop := make(chan struct{})
	var adminLat []time.Duration
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			req, _ := http.NewRequest("POST", in.AdminURL+"/api/portal/developers", strings.NewReader(fmt.Sprintf(`{"email":"flood-%d@example.com"}`, i)))
			req.Header.Set("Authorization", in.Key)
			res, err := client.Do(withTest(req, t))
			if err != nil {
				t.Errorf("admin write %d: %v", i, err)
				return
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("admin write %d: %d", i, res.StatusCode)
				return
			}
			adminLat = append(adminLat, time.Since(t0))
		}
	}()

	p := newHitPoster(t)
	var wg sync.WaitGroup
	var retried atomic.Int64
	next := atomic.Int64{}
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= posts {
					return
				}
				body := hitsBody(keys, fmt.Sprint("flood", i), size, 1)
				for {
					status, after := p.post(in.SidecarURL, fmt.Sprint("flood-", i), body)
					if status == 200 {
						break
					}
					if status != 503 || after == "" {
						t.Errorf("post %d: %d, want 200 or 503 with Retry-After", i, status)
						return
					}
					retried.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	<-adminDone
	if got := storedHits(t, in, keys); got != posts*size {
		t.Errorf("stored %d hits, want %d exactly", got, posts*size)
	}
	if len(adminLat) == 0 {
		t.Fatal("no admin write completed during the flood")
	}
	t.Logf("%d series in %v (%d posts answered 503 first); %d admin writes meanwhile: p50 %v, p99 %v, max %v",
		posts*size, elapsed.Round(time.Millisecond), retried.Load(), len(adminLat),
		percentile(adminLat, 50).Round(time.Microsecond), percentile(adminLat, 99).Round(time.Microsecond),
		percentile(adminLat, 100).Round(time.Microsecond))
}

// TestHitsSurviveKill9: five rounds of writers posting while keylens is
// killed with SIGKILL at a random moment. Every acknowledged batch is
// stored after the restart; the batches whose answer never came are sent
// again under their ids, as a writer does; in the end every batch is
// counted exactly once.
func TestHitsSurviveKill9(t *testing.T) {
	in := startDefault(t)
	store := in.Store
	keys := hashKeys("c9", 4)
	p := newHitPoster(t)
	type batch struct {
		id    string
		body  []byte
		hits  int64
		acked bool
	}
	var mu sync.Mutex
	var batches []*batch
	var ackedHits int64
	for round := range 5 {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					n, count := 50+rand.IntN(500), 1+rand.IntN(3)
					b := &batch{id: fmt.Sprintf("r%d-w%d-%d", round, w, i), hits: int64(n * count),
						body: hitsBody(keys, fmt.Sprintf("r%dw%db%d", round, w, i), n, count)}
					mu.Lock()
					batches = append(batches, b)
					mu.Unlock()
					status, _ := p.post(in.SidecarURL, b.id, b.body)
					if status == 200 {
						mu.Lock()
						b.acked = true
						ackedHits += b.hits
						mu.Unlock()
					} else if status != 0 && status != 503 {
						t.Errorf("batch %s: %d", b.id, status)
					}
					if status != 200 {
						return // the process is going: this writer stops
					}
				}
			})
		}
		time.Sleep(time.Duration(100+rand.IntN(500)) * time.Millisecond)
		in.kill()
		close(stop)
		wg.Wait()

		in = startKeylens(t, store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
		mu.Lock()
		acked := ackedHits
		var unknown int64
		for _, b := range batches {
			if !b.acked {
				unknown += b.hits
			}
		}
		mu.Unlock()
		// Everything acknowledged is there; of the rest, what a
		// commit took before the kill may be too.
		if got := storedHits(t, in, keys); got < acked || got > acked+unknown {
			t.Fatalf("round %d: %d hits stored after SIGKILL; acknowledged %d, unanswered %d", round, got, acked, unknown)
		}
		// The writers send what was not acknowledged again, under the
		// same ids.
		for _, b := range batches {
			if b.acked {
				continue
			}
			if status, _ := p.post(in.SidecarURL, b.id, b.body); status != 200 {
				t.Fatalf("batch %s sent again: %d", b.id, status)
			}
			b.acked = true
			ackedHits += b.hits
		}
		if got := storedHits(t, in, keys); got != ackedHits {
			t.Fatalf("round %d: %d hits stored, want %d: every batch once", round, got, ackedHits)
		}
		t.Logf("round %d: %d batches, %d hits, %d unanswered at the kill", round, len(batches), ackedHits, unknown)
	}
}

// TestHitsBatchRetriedAcrossARestartCountsOnce: a writer (the plugin)
// that lost the answer to a batch sends it again to a restarted keylens:
// the store remembers the id.
func TestHitsBatchRetriedAcrossARestartCountsOnce(t *testing.T) {
	in := startDefault(t)
	keys := hashKeys("r1", 2)
	body := hitsBody(keys, "plugin", 10, 7)
	p := newHitPoster(t)
	if status, _ := p.post(in.SidecarURL, "0123456789abcdef-1/0", body); status != 200 {
		t.Fatalf("first post: %d", status)
	}
	in.stop()
	in = startKeylens(t, in.Store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	r := in.sidecar("POST", "/hits", bytes.NewReader(body), map[string]string{"X-Keylens-Batch": "0123456789abcdef-1/0"})
	if r.Status != 200 || string(r.Body) != `{"recorded":0,"dropped":0,"duplicate":true}` {
		t.Errorf("the batch again after a restart: %d %s", r.Status, r.Body)
	}
	if got := storedHits(t, in, keys); got != 70 {
		t.Errorf("stored %d hits, want 70", got)
	}
}

// TestHitsBackpressure: with room for one request's series only, a burst of
// wide batches gets 503 with Retry-After for what does not fit; sent again,
// every batch is stored once.
func TestHitsBackpressure(t *testing.T) {
	in := startKeylens(t, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey}, "--hits-max-pending", "10000")
	keys := hashKeys("b1", 5)
	p := newHitPoster(t)
	var wg sync.WaitGroup
	var refused atomic.Int64
	const posts, size = 12, 4000
	for i := range posts {
		wg.Go(func() {
			body := hitsBody(keys, fmt.Sprint("bp", i), size, 1)
			for {
				status, after := p.post(in.SidecarURL, fmt.Sprint("bp-", i), body)
				if status == 200 {
					return
				}
				if status != 503 || after != "1" {
					t.Errorf("post %d: %d (Retry-After %q), want 200 or 503 with Retry-After", i, status, after)
					return
				}
				refused.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Error("12 concurrent batches of 4,000 series never met the 10,000-series limit")
	}
	if got := storedHits(t, in, keys); got != posts*size {
		t.Errorf("stored %d hits, want %d exactly", got, posts*size)
	}
	metrics := string(in.sidecar("GET", "/metrics", nil, nil).Body)
	if !strings.Contains(metrics, "keylens_analytics_refused_batches_total") || strings.Contains(metrics, "keylens_analytics_refused_batches_total 0\n") {
		t.Error("/metrics does not count the refused batches")
	}
	t.Logf("%d answers were 503", refused.Load())
}

// TestHitsSIGTERMWithASlowAdminClient: an admin client dripping its body a
// byte a second holds a connection while writers post hits; on SIGTERM
// keylens stops taking hits (503), commits what it took, cuts the slow
// client off after its own budget and exits 0 with every acknowledged hit
// stored.
func TestHitsSIGTERMWithASlowAdminClient(t *testing.T) {
	in := startDefault(t)
	keys := hashKeys("s1", 3)
	conn, err := net.Dial("tcp", strings.TrimPrefix(in.AdminURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/portal/developers HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", in.Key)
	drip := make(chan struct{})
	go func() {
		for {
			select {
			case <-drip:
				return
			case <-time.After(time.Second):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer close(drip)

	p := newHitPoster(t)
	var acked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				status, _ := p.post(in.SidecarURL, fmt.Sprintf("term-w%d-%d", w, i), hitsBody(keys, fmt.Sprint("t", w, "-", i), 300, 1))
				switch status {
				case 200:
					acked.Add(300)
				case 0, 503:
					return // shutting down
				default:
					t.Errorf("post: %d", status)
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("keylens did not exit on SIGTERM:\n%s", in.stderr)
	}
	close(stop)
	wg.Wait()
	var exit *exec.ExitError
	if in.exitErr != nil {
		if errors.As(in.exitErr, &exit) {
			t.Fatalf("exit code %d after SIGTERM:\n%s", exit.ExitCode(), in.stderr)
		}
		t.Fatal(in.exitErr)
	}
	t.Logf("exited 0 %v after SIGTERM with %d hits acknowledged", time.Since(start).Round(time.Millisecond), acked.Load())
	in = startKeylens(t, in.Store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	if got := storedHits(t, in, keys); got != acked.Load() {
		t.Errorf("stored %d hits, acknowledged %d", got, acked.Load())
	}
}

// BenchmarkHitsOverHTTP: 32 writers post 1,000-element batches (each
// writer's 100 keys on 10 APIs) to a running keylens, b.N batches in all,
// each waiting for its answer, so every acknowledgement is a commit;
// reports hits/s and the acknowledgement latency.
//
//	go test -run=NONE -bench=HitsOverHTTP -benchtime=2000x -count 3 ./tests/
func BenchmarkHitsOverHTTP(b *testing.B) {
	for _, store := range []string{"SQLite", "PostgreSQL"} {
		b.Run(store, func(b *testing.B) {
			dsn := ""
			if store == "PostgreSQL" {
				dsn = pgtest.Shared(b).NewDatabase(b)
			}
			in := startKeylens(b, dsn, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
			p := &hitPoster{t: b, client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
			const writers, size = 32, 1000
			bodies := make([][]byte, writers)
			for w := range bodies {
				bodies[w] = hitsBody(hashKeys(fmt.Sprintf("%02x", w), 100), "api", size, 1)
			}
			var next atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for {
						n := next.Add(1) - 1
						if n >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if status, _ := p.post(in.SidecarURL, fmt.Sprint("bench-", n), bodies[w]); status != 200 {
							b.Errorf("post: %d", status)
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
			b.StopTimer()
			b.ReportMetric(float64(b.N*size)/elapsed.Seconds(), "hits/s")
			b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ack-ms")
			b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ack-ms")
		})
	}
}
