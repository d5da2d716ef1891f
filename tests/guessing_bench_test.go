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

// BenchmarkValidKeyUnderGuessing measures the p99 of a valid key's /auth
// on a running keylens, alone and while 16 connections guess Basic
// passwords (each guess distinct: a bcrypt comparison each, bounded by
// --bcrypt-concurrency). It reports both and their ratio; nothing is
// asserted.
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
	// flood runs 16 connections sending what cred returns while the
	// valid key is measured.
	flood := func(cred func(g, i int) string) (p99 time.Duration, n int, sent, refused int64) {
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
		close(stop)
		wg.Wait()
		return p99, n, s.Load(), r.Load()
	}
	for range b.N {
		quiet, n1 := measure(3 * time.Second)
		guess, n2, guesses, refused := flood(func(g, i int) string {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s:guess-%d-%d", basic.RawKey, g, i)))
		})
		// The same request flood without a password to check: what 16
		// busy connections cost on this machine, bcrypt aside.
		cheap, n3, unknown, _ := flood(func(g, i int) string { return fmt.Sprintf("unknown-key-%d", g) })
		b.ReportMetric(float64(quiet.Microseconds())/1000, "p99-quiet-ms")
		b.ReportMetric(float64(guess.Microseconds())/1000, "p99-guessing-ms")
		b.ReportMetric(float64(cheap.Microseconds())/1000, "p99-unknown-flood-ms")
		b.ReportMetric(float64(guess)/float64(quiet), "ratio")
		b.Logf("valid key p99: %v alone (%d requests); %v with 16 connections guessing Basic passwords (%d requests; %d guesses, %d answered 429); %v with 16 connections sending unknown keys (%d requests; %d sent)",
			quiet, n1, guess, n2, guesses, refused, cheap, n3, unknown)
	}
}
