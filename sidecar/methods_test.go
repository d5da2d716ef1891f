package sidecar_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens/sidecar"
)

// TestMethods: a route answers the methods it serves and 405 with Allow
// for the others, /metrics, /healthz and the JWKS included (they answered
// any method once); an unknown path is 404.
func TestMethods(t *testing.T) {
	srv, err := sidecar.NewServer(sidecar.Config{Resolver: newFixture(t).r})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/healthz", 200, ""},
		{"HEAD", "/healthz", 200, ""},
		{"POST", "/healthz", 405, "GET, HEAD"},
		{"GET", "/metrics", 200, ""},
		{"DELETE", "/metrics", 405, "GET, HEAD"},
		{"PUT", "/.well-known/jwks.json", 405, "GET, HEAD"},
		{"GET", "/.well-known/jwks.json", 404, ""}, // assertions are off
		{"GET", "/introspect", 405, "POST"},
		{"POST", "/developer", 405, "GET, HEAD"},
		{"GET", "/hits", 405, "POST"},
		{"POST", "/changes", 405, "GET"},
		{"GET", "/nope", 404, ""},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(c.method)
		ctx.Request.SetRequestURI(c.path)
		h(&ctx)
		if got := ctx.Response.StatusCode(); got != c.status || string(ctx.Response.Header.Peek("Allow")) != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d %q", c.method, c.path, got, ctx.Response.Header.Peek("Allow"), c.status, c.allow)
		}
	}
}
