package sidecar_test

import (
	"context"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/sidecar"
)

// TestAuthHeadersAsSetOneByOne: /auth writes an identity's headers exactly
// as fasthttp writes them when each is set with SetCanonical, the way they
// were written before the sidecar kept them as ready lines: with two
// headers of one name, and with header names fasthttp gives a meaning of
// its own. It also holds /auth to no allocation.
func TestAuthHeadersAsSetOneByOne(t *testing.T) {
	// The developer has a field Company too: with one prefix for both kinds
	// of field, two headers share a name.
	fields := map[string]any{"Company": "from the key request", "Use case": "billing", "seats": 3, "Plan": " gold\r\n"}
	for _, c := range []struct {
		name  string
		names identity.HeaderNames
	}{
		{"default names", identity.DefaultHeaderNames},
		{"one prefix for both kinds of field", identity.HeaderNames{DeveloperID: "X-Developer-Id", Email: "X-Developer-Email",
			KeyID: "X-Key-Id", FieldPrefix: "X-F-", KeyRequestFieldPrefix: "X-F-", Assertion: "X-Developer-Assertion"}},
		{"names fasthttp treats as its own", identity.HeaderNames{DeveloperID: "Server", Email: "content-type", KeyID: "X-Key-Id",
			Policies: "Date", FieldPrefix: "X-F-", KeyRequestFieldPrefix: "X-F-", Assertion: "X-Developer-Assertion"}},
		{"a field header named as the assertion, assertions off", identity.HeaderNames{DeveloperID: "X-Id", KeyRequestFieldPrefix: "X-Developer-",
			Assertion: "X-Developer-Plan"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			r := sidecar.NewResolver(f.db, sidecar.ResolverOptions{Headers: c.names})
			a := f.issue(t, &keylens.KeyRequest{ForPlan: "pol-token", Fields: fields})
			e, err := r.Resolve(context.Background(), []byte(a.RawKey))
			if err != nil {
				t.Fatal(err)
			}
			srv, err := sidecar.NewServer(sidecar.Config{Resolver: r})
			if err != nil {
				t.Fatal(err)
			}
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/auth")
			ctx.Request.Header.Set("Authorization", a.RawKey)
			srv.Handler()(&ctx)

			var want fasthttp.ResponseHeader
			hs, _ := e.Identity().HeadersWithin(c.names, identity.DefaultMaxHeaderBytes)
			for _, h := range hs {
				want.SetCanonical([]byte(h.Name), []byte(h.Value))
			}
			if got := ctx.Response.Header.String(); got != want.String() {
				t.Errorf("/auth answered\n%q\nset one by one:\n%q", got, want.String())
			}
			if n := testing.AllocsPerRun(200, func() {
				ctx.Response.Reset()
				srv.Handler()(&ctx)
			}); n != 0 {
				t.Errorf("/auth on a cached key: %v allocations", n)
			}
		})
	}
}
