package sidecar

import (
	"strings"
	"testing"

	"github.com/keylens/keylens/docs/contract"
)

// TestRoutesDescribed holds the sidecar's routes (the table serve
// dispatches on) and the sidecar listener's operations in
// docs/openapi.yaml to each other: every method of every route must be
// described, and every described operation served.
func TestRoutesDescribed(t *testing.T) {
	c, err := contract.Load()
	if err != nil {
		t.Fatal(err)
	}
	ops := c.Operations(contract.Sidecar)
	if len(ops) == 0 {
		t.Fatal("the description has no operation on the sidecar listener")
	}
	described := map[string]bool{}
	for _, op := range ops {
		r := lookup([]byte(op.Sample()))
		switch {
		case r == nil:
			t.Errorf("%s %s is described, but no route serves it", op.Method, op.Path)
		case r.methods != "" && !r.allows([]byte(op.Method)):
			t.Errorf("%s %s is described, but %s serves only %s", op.Method, op.Path, r.path, r.methods)
		default:
			described[op.Method+" "+r.path] = true
		}
	}
	every := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} // all OpenAPI 3.1 names
	for _, r := range routes {
		methods := every
		if r.methods != "" {
			methods = strings.Split(r.methods, ", ")
		}
		for _, m := range methods {
			if !described[m+" "+r.path] {
				t.Errorf("%s %s is served but not described in docs/openapi.yaml", m, r.path)
			}
		}
	}
}
