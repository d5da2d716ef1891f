package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// BenchmarkPages100k measures the server time of the console's heaviest
// pages over 100,000 developers (each with an audit entry, so the Activity
// page counts 100,000 too), in process on a real SQLite file: the handler,
// its store queries and the template. Seeding takes a while; run with
//
//	go test -run '^$' -bench Pages100k -benchtime 200x ./web/
func BenchmarkPages100k(b *testing.B) {
	const n = 100_000
	tc := newTestConsole(b)
	ctx := context.Background()
	start := time.Now()
	tc.fixture()
	for lo := 0; lo < n-1; lo += 10_000 {
		devs := make([]*keylens.Developer, 0, 10_000)
		for i := lo; i < min(lo+10_000, n-1); i++ {
			devs = append(devs, &keylens.Developer{Email: fmt.Sprintf("dev%06d@example.com", i),
				Fields: map[string]string{"Name": fmt.Sprintf("Developer %d", i), "Company": "Example"}})
		}
		if err := tc.db.CreateDevelopers(ctx, devs); err != nil {
			b.Fatal(err)
		}
	}
	d, err := tc.db.FindDeveloperByEmail(ctx, "ada@example.com")
	if err != nil {
		b.Fatal(err)
	}
	// The profile's developer has three keys with 30 days of traffic.
	var series []keylens.HitDelta
	for k := range 3 {
		a, err := tc.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}})
		if err != nil {
			b.Fatal(err)
		}
		for day := range 30 {
			h := time.Now().UTC().AddDate(0, 0, -day).Truncate(time.Hour)
			for _, code := range []int{200, 404, 500} {
				series = append(series, keylens.HitDelta{KeyHash: a.KeyHash, APIID: "payments", Hour: h.Unix() / 3600,
					Code: code, Hits: int64(100 + k + day), LastHit: h.UnixNano()})
			}
		}
	}
	if _, err := tc.db.AddHits(ctx, []keylens.HitBatch{{Series: series}}); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d developers in %v", n, time.Since(start).Round(time.Second))
	br := tc.signedIn()
	for _, p := range []struct{ name, path string }{
		{"DevelopersFirstPage", "/admin/developers"},
		{"DevelopersPage2500", "/admin/developers?p=2500"},
		{"DevelopersSearchOne", "/admin/developers?q=dev054321"},
		{"DevelopersSearchAll", "/admin/developers?q=example.com"},
		{"Profile", "/admin/developers/" + d.ID},
		{"Activity", "/admin/activity"},
	} {
		b.Run(p.name, func(b *testing.B) {
			if pg := br.get(p.path); pg.Status != http.StatusOK {
				b.Fatalf("%s: %d", p.path, pg.Status)
			}
			b.ResetTimer()
			for b.Loop() {
				br.get(p.path)
			}
		})
	}
}

// BenchmarkPortalPages measures the server time of the developer portal's
// pages for a developer with five keys, each with 30 days of traffic, in
// process on a real SQLite file:
//
//	go test -run '^$' -bench PortalPages -benchtime 200x ./web/
func BenchmarkPortalPages(b *testing.B) {
	tp := newTestPortalB(b)
	ctx := context.Background()
	br := tp.signUp("ada@example.com", "first-pass")
	d := tp.developer("ada@example.com")
	var series []keylens.HitDelta
	var first string
	for k := range 5 {
		a, err := tp.db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-payments"}})
		if err != nil {
			b.Fatal(err)
		}
		if k == 0 {
			first = a.KeyHash
		}
		for day := range 30 {
			h := time.Now().UTC().AddDate(0, 0, -day).Truncate(time.Hour)
			for _, code := range []int{200, 404, 500} {
				series = append(series, keylens.HitDelta{KeyHash: a.KeyHash, APIID: "payments", Hour: h.Unix() / 3600,
					Code: code, Hits: int64(100 + k + day), LastHit: h.UnixNano()})
			}
		}
	}
	if _, err := tp.db.AddHits(ctx, []keylens.HitBatch{{Series: series}}); err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct{ name, path string }{
		{"Catalogue", "/catalogue"},
		{"Dashboard", "/dashboard"},
		{"Key", "/keys/" + first},
		{"Profile", "/profile"},
	} {
		b.Run(p.name, func(b *testing.B) {
			if pg := br.get(p.path); pg.Status != http.StatusOK {
				b.Fatalf("%s: %d", p.path, pg.Status)
			}
			b.ResetTimer()
			for b.Loop() {
				br.get(p.path)
			}
		})
	}
}
