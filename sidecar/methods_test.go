package sidecar_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

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

// TestIdleConnectionsCloseSilently: a connection that sends nothing is
// closed without an answer when its read times out (an unsolicited 400
// would be read, by a proxy that opened it ahead, as the answer to its
// next request); one that stops within a request is answered 408.
func TestIdleConnectionsCloseSilently(t *testing.T) {
	f := newFixture(t)
	addr := serveOnLoopback(t, sidecar.Config{Resolver: f.r}, func(fs *fasthttp.Server) {
		fs.ReadTimeout, fs.IdleTimeout = time.Second, time.Second
	})
	for _, c := range []struct{ name, send, want string }{
		{"a new connection", "", ""},
		{"after an answer", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", `{"status":"ok"}`},
		{"within a request", "GET /auth HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 408 Request Timeout"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, c.send); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(conn) // until the server closes it
		conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s := string(got); (c.want == "" && s != "") || !strings.Contains(s, c.want) || strings.Count(s, "HTTP/1.1") > 1 {
			t.Errorf("%s: the server sent %q before closing, want %q only", c.name, s, c.want)
		}
	}
}
