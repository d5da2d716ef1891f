package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keylens/keylens/portalstore/sqlstore/pgtest"
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
		startLoneSidecar(t, "--store", store, "--flush-interval", "100ms"),
		startLoneSidecar(t, "--store", store, "--flush-interval", "100ms"),
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
				if res := send(t, req); res.Status != 200 {
					t.Errorf("POST /hits: %d %s", res.Status, res.Body)
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
