package tests

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkValidKeyUnderGuessing measures, on a running keylens, the p99
// of a valid key's /auth alone and while 16 connections guess Basic
// passwords, each guess distinct: at one known username (refused after
// its own failures) and at unknown usernames (each a bcrypt comparison,
// sharing --bcrypt-concurrency). While each flood runs it also issues 5
// new Basic credentials and sends each one request: how many of those
// first requests answer 200. It reports the p99s, their ratios to the
// quiet p99, and the first requests' statuses; nothing is asserted.
//
//	go test -run=NONE -bench=ValidKeyUnderGuessing -benchtime=1x -count 3 ./tests/
func BenchmarkValidKeyUnderGuessing(b *testing.B) {
	in := startKeylens(b, "", []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	wantEnvelope0 := func(r response) {
		if r.Status != 200 {
			b.Fatalf("setup: %d %s", r.Status, r.Body)
		}
	}
	wantEnvelope0(in.do("POST", "/api/portal/catalogue", testCatalogue))
	r := in.do("POST", "/api/portal/developers", `{"email":"bench@example.com"}`)
	wantEnvelope0(r)
	dev := decodeAs[envelope](b, r).Message
	var token, basic struct{ RawKey, Password string }
	token = decodeAs[struct{ RawKey, Password string }](b, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-token"]}`))
	basic = decodeAs[struct{ RawKey, Password string }](b, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-basic"]}`))
	if token.RawKey == "" || basic.RawKey == "" {
		b.Fatal("no keys issued")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
	get := func(auth string) int {
		req, _ := http.NewRequest("GET", in.SidecarURL+"/auth", nil)
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	measure := func(d time.Duration) (p99 time.Duration, n int) {
		var mu sync.Mutex
		var lat []time.Duration
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					t0 := time.Now()
					if s := get(token.RawKey); s != 200 {
						b.Errorf("valid key: %d", s)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return percentile(lat, 99), len(lat)
	}
	// firstRequests issues 5 new Basic credentials, one at a time, and
	// sends each its first request: their statuses.
	firstRequests := func() []int {
		var statuses []int
		for range 5 {
			k := decodeAs[struct{ RawKey, Password string }](b, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-basic"]}`))
			statuses = append(statuses, get("Basic "+base64.StdEncoding.EncodeToString([]byte(k.RawKey+":"+k.Password))))
		}
		return statuses
	}
	// flood runs 16 connections sending what cred returns while the
	// valid key is measured, then while new credentials are tried.
	flood := func(cred func(g, i int) string) (p99 time.Duration, n int, sent, refused int64, first []int) {
		var s, r atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if get(cred(g, i)) == 429 {
						r.Add(1)
					}
					s.Add(1)
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		p99, n = measure(3 * time.Second)
		first = firstRequests()
		close(stop)
		wg.Wait()
		return p99, n, s.Load(), r.Load(), first
	}
	ok := func(statuses []int) (n int) {
		for _, s := range statuses {
			if s == 200 {
				n++
			}
		}
		return n
	}
	for range b.N {
		quiet, n1 := measure(3 * time.Second)
		guess, n2, guesses, refused, first1 := flood(func(g, i int) string {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s:guess-%d-%d", basic.RawKey, g, i)))
		})
		spray, n4, sprays, sprayRefused, first2 := flood(func(g, i int) string {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("user-%d-%d:guess", g, i)))
		})
		// The same request flood without a password to check: what 16
		// busy connections cost on this machine, bcrypt aside.
		cheap, n3, unknown, _, _ := flood(func(g, i int) string { return fmt.Sprintf("unknown-key-%d", g) })
		b.ReportMetric(float64(quiet.Microseconds())/1000, "p99-quiet-ms")
		b.ReportMetric(float64(guess.Microseconds())/1000, "p99-guessing-ms")
		b.ReportMetric(float64(spray.Microseconds())/1000, "p99-spraying-ms")
		b.ReportMetric(float64(cheap.Microseconds())/1000, "p99-unknown-flood-ms")
		b.ReportMetric(float64(guess)/float64(quiet), "ratio")
		b.ReportMetric(float64(spray)/float64(quiet), "ratio-spraying")
		b.ReportMetric(float64(ok(first1)), "new-basic-200-of-5")
		b.ReportMetric(float64(ok(first2)), "new-basic-200-of-5-spraying")
		b.Logf("valid key p99: %v alone (%d requests); %v with 16 connections guessing one username's password (%d requests; %d guesses, %d answered 429); %v with 16 connections guessing at unknown usernames (%d requests; %d guesses, %d answered 429); %v with 16 connections sending unknown keys (%d requests; %d sent)",
			quiet, n1, guess, n2, guesses, refused, spray, n4, sprays, sprayRefused, cheap, n3, unknown)
		b.Logf("new Basic credentials' first requests: %v while one username is guessed at, %v while unknown usernames are", first1, first2)
	}
}
