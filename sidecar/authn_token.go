package sidecar

import (
	"context"

	"github.com/keylens/keylens"
)

// tokenAuthenticator takes an API key, raw or after "Bearer ": it is
// filed under the gateway's hash of it. It takes anything the others did
// not: it is asked last.
type tokenAuthenticator struct{ r *Resolver }

func (a tokenAuthenticator) authenticate(ctx context.Context, cred []byte) (*keylens.Credential, int64, error) {
	c, err := a.r.findKey(ctx, keylens.HashKey(string(bearer(cred))))
	return c, 0, err
}
