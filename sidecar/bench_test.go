package sidecar_test

import (
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/sidecar"
	"github.com/keylens/keylens/sqlstore"
	"github.com/keylens/keylens/sqlstore/pgtest"
)

// BenchmarkResolveHit: a hot key answered from the cache.
func BenchmarkResolveHit(b *testing.B) {
	f := newFixture(b)
	a := f.issue(b, &keylens.KeyRequest{ForPlan: "pol-token", Fields: map[string]any{"Use case": "billing"}})
	cred := []byte(a.RawKey)
	ctx := context.Background()
	if _, err := f.r.Resolve(ctx, cred); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.r.Resolve(ctx, cred); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResolveTokenHit: a hot OAuth access token answered from the
// cache, to compare with BenchmarkResolveHit.
func BenchmarkResolveTokenHit(b *testing.B) {
	f, client := oauthBench(b)
	tok, hash := keylens.NewAccessToken()
	if _, err := f.db.IssueToken(context.Background(), client, hash, time.Hour); err != nil {
		b.Fatal(err)
	}
	benchHits(b, f.r, []byte("Bearer "+tok))
}

// BenchmarkResolveCentralJWTHit: a hot JWT signed by an identity
// provider's JWKS, answered from the cache.
func BenchmarkResolveCentralJWTHit(b *testing.B) {
	f := newFixture(b)
	f.db.CentralJWT = true
	key := f.issue(b, &keylens.KeyRequest{ForPlan: "pol-jwt"})
	priv, _ := rsa.GenerateKey(crand.Reader, 2048)
	p := newIDP(b)
	p.serve(b, 200, map[string]any{"a": &priv.PublicKey})
	if err := f.r.UseCentralJWT(sidecar.CentralJWT{JWKSURL: p.srv.URL}); err != nil {
		b.Fatal(err)
	}
	tok := signed(b, jwt.SigningMethodRS256, "a", jwt.MapClaims{"sub": key.RawKey, "exp": time.Now().Add(time.Hour).Unix()}, priv)
	benchHits(b, f.r, []byte("Bearer "+tok))
}

// BenchmarkIssueToken: what one token costs to issue: making it, checking
// the client's secret (one read) and filing its hash (one write
// transaction), on SQLite.
func BenchmarkIssueToken(b *testing.B) {
	f, client := oauthBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, hash := keylens.NewAccessToken()
		if _, err := f.db.IssueToken(ctx, client, hash, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func oauthBench(b *testing.B) (*fixture, keylens.ClientCredentials) {
	f := newFixture(b)
	a := f.issue(b, &keylens.KeyRequest{ForPlan: "pol-oauth"})
	return f, keylens.ClientCredentials{ID: a.OAuthClient.ClientID, Secret: a.OAuthClient.Secret}
}

// benchHits resolves cred from the cache in parallel.
func benchHits(b *testing.B, r *sidecar.Resolver, cred []byte) {
	ctx := context.Background()
	if _, err := r.Resolve(ctx, cred); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Resolve(ctx, cred); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// population is a store with many developers, each holding one key; built
// once per test process and store because it takes seconds.
type population struct {
	db   *sqlstore.DB
	keys []string // raw keys, index i belongs to developer i
}

var (
	popOnce, pgPopOnce sync.Once
	pop, pgPop         *population
	popErr, pgPopErr   error
)

// bigPopulation returns a SQLite store of n developers (n fixed per process).
func bigPopulation(tb testing.TB, n int) *population {
	popOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keylens-bench-")
		if err != nil {
			popErr = err
			return
		}
		pop, popErr = populate("sqlite:"+filepath.Join(dir, "k.db"), n)
	})
	if popErr != nil {
		tb.Fatal(popErr)
	}
	return pop
}

// bigPostgresPopulation is bigPopulation on the test cluster's PostgreSQL.
func bigPostgresPopulation(tb testing.TB, n int) *population {
	cluster := pgtest.Shared(tb)
	pgPopOnce.Do(func() {
		dsn, _, err := cluster.CreateDatabase()
		if err != nil {
			pgPopErr = err
			return
		}
		pgPop, pgPopErr = populate(dsn, n)
	})
	if pgPopErr != nil {
		tb.Fatal(pgPopErr)
	}
	return pgPop
}

func populate(dsn string, n int) (*population, error) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	p := &population{db: db}
	const batch = 10000
	for start := 0; start < n; start += batch {
		devs := make([]*keylens.Developer, 0, batch)
		for i := start; i < min(start+batch, n); i++ {
			raw := keylens.KeyFor("5e9d9544a1dcd60001d0ed20", fmt.Sprintf("%032x", i), "murmur64")
			p.keys = append(p.keys, raw)
			devs = append(devs, &keylens.Developer{
				Email:  fmt.Sprintf("dev%06d@example.com", i),
				Fields: map[string]string{"Company": fmt.Sprintf("Company %d", i), "Plan": "gold"},
				Keys:   map[string][]string{keylens.HashKey(raw): {"pol-token"}},
			})
		}
		if err := db.CreateDevelopers(ctx, devs); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

const populationSize = 100000

// BenchmarkResolveCold: every lookup misses the cache and reads SQLite,
// over 100,000 developers. Reports p50 and p99 of single lookups.
func BenchmarkResolveCold(b *testing.B) {
	resolveCold(b, bigPopulation(b, populationSize))
}

// BenchmarkResolveColdPostgreSQL: the same against PostgreSQL on loopback.
func BenchmarkResolveColdPostgreSQL(b *testing.B) {
	resolveCold(b, bigPostgresPopulation(b, populationSize))
}

func resolveCold(b *testing.B, p *population) {
	r := sidecar.NewResolver(p.db, sidecar.ResolverOptions{Size: 1})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := []byte(p.keys[rng.IntN(len(p.keys))])
		r.Purge()
		start := time.Now()
		if _, err := r.Resolve(ctx, key); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCachedIdentityMemory reports the heap one cached identity costs
// (a developer with two custom fields, one policy, its encoded answers and
// index entries).
func BenchmarkCachedIdentityMemory(b *testing.B) {
	p := bigPopulation(b, populationSize)
	const n = 20000
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		r := sidecar.NewResolver(p.db, sidecar.ResolverOptions{Size: n})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for j := 0; j < n; j++ {
			if _, err := r.Resolve(ctx, []byte(p.keys[j])); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if r.Len() != n {
			b.Fatalf("cached %d, want %d", r.Len(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/identity")
		runtime.KeepAlive(r)
	}
}

// BenchmarkAuthHandler: the whole /auth handler on a cached key, headers
// written, without the network.
func BenchmarkAuthHandler(b *testing.B) {
	f := newFixture(b)
	a := f.issue(b, &keylens.KeyRequest{ForPlan: "pol-token", Fields: map[string]any{"Use case": "billing"}})
	srv, err := sidecar.NewServer(sidecar.Config{Resolver: f.r})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	// Prime the cache directly: a RequestCtx outside a server is not a
	// usable context.Context for the store, and the hit path never uses it.
	if _, err := f.r.Resolve(context.Background(), []byte(a.RawKey)); err != nil {
		b.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/auth")
	ctx.Request.Header.Set("Authorization", a.RawKey)
	h(&ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d", ctx.Response.StatusCode())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx.Response.Reset()
		h(&ctx)
	}
}

// BenchmarkResolveHitSpread: cache hits over 100,000 cached identities,
// each request a random one (memory locality, not the store, is measured).
func BenchmarkResolveHitSpread(b *testing.B) {
	p := bigPopulation(b, populationSize)
	r := sidecar.NewResolver(p.db, sidecar.ResolverOptions{Size: populationSize})
	ctx := context.Background()
	creds := make([][]byte, len(p.keys))
	for i, k := range p.keys {
		creds[i] = []byte(k)
		if _, err := r.Resolve(ctx, creds[i]); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	order := make([]int, 1<<16)
	for i := range order {
		order[i] = rng.IntN(len(creds))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Resolve(ctx, creds[order[i&(len(order)-1)]]); err != nil {
			b.Fatal(err)
		}
	}
}
