package sidecar

import (
	"bytes"
	"context"
	"encoding/base64"
	"time"

	"github.com/keylens/keylens"
)

// basicAuthenticator takes "Basic <base64 user:password>" of a basic key:
// the username finds the key, the password is checked against its bcrypt
// hash, at most BcryptConcurrency at once (ErrBusy beyond).
type basicAuthenticator struct{ r *Resolver }

func (a basicAuthenticator) authenticate(ctx context.Context, cred []byte) (*keylens.Credential, int64, error) {
	if !hasPrefixFold(cred, "basic ") {
		return nil, 0, errNotMine
	}
	return a.r.lookupBasic(ctx, bytes.TrimSpace(cred[6:]))
}

func (r *Resolver) lookupBasic(ctx context.Context, encoded []byte) (*keylens.Credential, int64, error) {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(encoded)))
	n, err := base64.StdEncoding.Decode(raw, encoded)
	if err != nil {
		return nil, 0, ErrUnknown
	}
	user, pass, ok := bytes.Cut(raw[:n], []byte{':'})
	if !ok || len(user) == 0 {
		return nil, 0, ErrUnknown
	}
	start := time.Now()
	c, err := r.store.ResolveBasicUser(ctx, string(user))
	r.m.observeStore("basic", start, err)
	hash := ""
	switch {
	case err == nil && c.Key.AuthType == keylens.AuthBasic:
		hash = c.Key.BasicPasswordHash
	case err == nil, keylens.ErrorCode(err) == keylens.ENOTFOUND:
		// Unknown: the same cost as a real check (an empty hash).
	default:
		return nil, 0, err
	}
	// Only the comparison takes a slot: a slow store lookup (a portal's
	// round trip) must not fill them while the CPUs idle.
	select {
	case r.bcryptSlots <- struct{}{}:
	default:
		return nil, 0, ErrBusy
	}
	ok = r.checkPassword(hash, string(pass))
	<-r.bcryptSlots
	if !ok || hash == "" {
		return nil, 0, ErrUnknown
	}
	return c, 0, nil
}
