package tests

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens/sqlstore/pgtest"
)

// TestFleetOnPostgreSQL runs keylens as a fleet: one portal and two
// sidecars (as on two gateway nodes) on one PostgreSQL database. A
// revocation through the portal reaches both sidecars (the change feed is
// polled every 200 ms across processes; the times are logged), and
// 2 × 100,000 hits sent to the two sidecars, flushed concurrently, add up
// exactly in the portal's aggregate endpoint.
func TestFleetOnPostgreSQL(t *testing.T) {
	store := pgtest.Shared(t).NewDatabase(t)
	portal := startKeylens(t, store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	dev, raw := issuedKey(t, portal)
	sidecars := []string{
		startLoneSidecar(t, "--store", store),
		startLoneSidecar(t, "--store", store),
	}
	status := func(base string) int {
		req, _ := http.NewRequest("GET", base+"/developer", nil)
		req.Header.Set("Authorization", raw)
		return send(t, req).Status
	}
	for i, sc := range sidecars {
		if s := status(sc); s != 200 {
			t.Fatalf("sidecar %d: %d before revocation", i, s)
		}
	}

	// 100,000 hits per sidecar, 100 requests of 1,000 each, 8 at a time:
	// the flushes of both sidecars run while hits keep arriving.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, sc := range sidecars {
		for r := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				var hits []string
				for i := range 1000 {
					code := 200
					if (r*1000+i)%10 == 0 {
						code = 500
					}
					hits = append(hits, fmt.Sprintf(`{"key":"add2b342","api_id":"api-fleet","code":%d}`, code))
				}
				req, _ := http.NewRequest("POST", sc+"/hits", strings.NewReader("["+strings.Join(hits, ",")+"]"))
				req.Header.Set("Content-Type", "application/json")
				res, err := client.Do(withTest(req, t)) // not send: no t.Fatal off the test's goroutine
				if err != nil {
					t.Errorf("POST /hits: %v", err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Errorf("POST /hits: %d %s", res.StatusCode, body)
				}
			}()
		}
	}
	wg.Wait()
	today := time.Now().UTC().Format("2/1/2006")
	start := time.Now()
	var got hitList
	for time.Since(start) < 10*time.Second {
		got = decodeAs[hitList](t, portal.do("GET", "/api/activity/keys/aggregate/add2b342/"+today+"/"+today, ""))
		if len(got.Data) == 1 && got.Data[0].Hits == 200000 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(got.Data) != 1 || got.Data[0].Hits != 200000 || got.Data[0].Success != 180000 || got.Data[0].Error != 20000 {
		t.Fatalf("aggregate after 2 × 100,000 hits: %+v", got.Data)
	}
	t.Logf("200,000 hits stored and aggregated %v after the last was acknowledged", time.Since(start).Round(time.Millisecond))

	wantEnvelope(t, portal.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), ""), 200, "OK", "Data deleted")
	revoked := time.Now()
	for i, sc := range sidecars {
		waitUntil(t, fmt.Sprintf("sidecar %d refuses the revoked key", i), func() bool { return status(sc) == 401 })
	}
	t.Logf("both sidecars refuse the revoked key %v after the portal answered", time.Since(revoked).Round(time.Millisecond))
}

// TestSidecarRidesOutADatabaseRestart stops PostgreSQL under a running
// sidecar: hot keys keep answering from the cache, unknown keys are refused
// (503: the store cannot say), /healthz reports the degradation, and hits
// acknowledged meanwhile are stored once the database is back. The sidecar
// reconnects by itself and follows the change feed again.
func TestSidecarRidesOutADatabaseRestart(t *testing.T) {
	cluster := pgtest.Start(t)
	store := cluster.NewDatabase(t)
	portal := startKeylens(t, store, []string{"KEYLENS_ADMIN_KEY=" + testAdminKey})
	dev, raw := issuedKey(t, portal)
	sc := startLoneSidecar(t, "--store", store)
	get := func(path, key string) int {
		req, _ := http.NewRequest("GET", sc+path, nil)
		if key != "" {
			req.Header.Set("Authorization", key)
		}
		return send(t, req).Status
	}
	postHits := func(batch string, n int) response {
		req, _ := http.NewRequest("POST", sc+"/hits", strings.NewReader(fmt.Sprintf(`[{"key":"add2b342","api_id":"a","code":200,"count":%d}]`, n)))
		req.Header.Set("X-Keylens-Batch", batch)
		return send(t, req)
	}
	// stored is what the portal's aggregate says; -1 while the portal
	// cannot answer (its first query on a connection the restart broke
	// fails with a 500, and the pool then reconnects).
	stored := func() int64 {
		today := time.Now().UTC().Format("2/1/2006")
		r := portal.do("GET", "/api/activity/keys/aggregate/add2b342/"+today+"/"+today, "")
		if r.Status != 200 {
			return -1
		}
		l := decodeAs[hitList](t, r)
		if len(l.Data) == 0 {
			return 0
		}
		return l.Data[0].Hits
	}
	if get("/developer", raw) != 200 {
		t.Fatal("key refused before the restart")
	}
	if r := postHits("b1", 1000); r.Status != 200 {
		t.Fatalf("POST /hits: %d %s", r.Status, r.Body)
	}
	if n := stored(); n != 1000 {
		t.Fatalf("%d hits stored once /hits answered, want 1000", n)
	}

	cluster.Down(t)
	if s := get("/developer", raw); s != 200 {
		t.Errorf("hot key with the database down: %d", s)
	}
	if s := get("/developer", "a-key-never-seen"); s != 503 {
		t.Errorf("unknown key with the database down: %d, want 503", s)
	}
	if s := get("/healthz", ""); s != 503 {
		t.Errorf("/healthz with the database down: %d", s)
	}
	// Nothing can be stored: the writer is told to retry, not told
	// its hits are safe.
	if r := postHits("b2", 500); r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("POST /hits with the database down: %d %s, want 503 with Retry-After", r.Status, r.Body)
	}

	cluster.Up(t)
	deadline := time.Now().Add(20 * time.Second)
	for postHits("b2", 500).Status != 200 { // the writer's retries, as the plugin makes them
		if time.Now().After(deadline) {
			t.Fatal("POST /hits still refused after the restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for stored() != 1500 || get("/healthz", "") != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: %d hits stored (want 1500), /healthz %d", stored(), get("/healthz", ""))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The change feed is followed again: a revocation still arrives.
	wantEnvelope(t, portal.do("DELETE", "/api/portal/developers/"+dev+"/keys/"+url.PathEscape(raw), ""), 200, "OK", "Data deleted")
	deadline = time.Now().Add(10 * time.Second)
	for get("/developer", raw) != 401 {
		if time.Now().After(deadline) {
			t.Fatal("a revocation after the restart did not reach the sidecar")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
