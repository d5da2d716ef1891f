package sidecar_test

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens/sidecar"
)

// serveOnLoopback serves a sidecar of cfg on a loopback port until the test
// ends, with tweak (if any) applied to its fasthttp server first, and
// returns its address (host:port).
func serveOnLoopback(t *testing.T, cfg sidecar.Config, tweak func(*fasthttp.Server)) string {
	t.Helper()
	srv, err := sidecar.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := srv.NewFastHTTPServer()
	if tweak != nil {
		tweak(fs)
	}
	go fs.Serve(ln)
	t.Cleanup(func() { fs.Shutdown() })
	return ln.Addr().String()
}
