package sidecar

import (
	"bytes"
	"context"
	"encoding/base64"
	"time"

	"github.com/keylens/keylens/portalstore"
)

// basicAuthenticator takes "Basic <base64 user:password>" of a basic key:
// the username finds the key, the password is checked against its bcrypt
// hash, at most BcryptConcurrency at once (ErrBusy beyond).
type basicAuthenticator struct{ r *Resolver }

func (a basicAuthenticator) authenticate(ctx context.Context, cred []byte) (*portalstore.Credential, int64, error) {
	if !hasPrefixFold(cred, "basic ") {
		return nil, 0, errNotMine
	}
	return a.r.lookupBasic(ctx, bytes.TrimSpace(cred[6:]))
}

func (r *Resolver) lookupBasic(ctx context.Context, encoded []byte) (*portalstore.Credential, int64, error) {
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(encoded)))
	n, err := base64.StdEncoding.Decode(raw, encoded)
	if err != nil {
		return nil, 0, ErrUnknown
	}
	user, pass, ok := bytes.Cut(raw[:n], []byte{':'})
	if !ok || len(user) == 0 {
		return nil, 0, ErrUnknown
	}
	select {
	case r.bcryptSlots <- struct{}{}:
		defer func() { <-r.bcryptSlots }()
	default:
		return nil, 0, ErrBusy
	}
	start := time.Now()
	c, err := r.store.ResolveBasicUser(ctx, string(user))
	r.m.observeStore("basic", start, err)
	if portalstore.ErrorCode(err) == portalstore.ENOTFOUND {
		portalstore.CheckPassword("", string(pass)) // same cost as a real check
		return nil, 0, ErrUnknown
	} else if err != nil {
		return nil, 0, err
	}
	if c.Key.AuthType != portalstore.AuthBasic || !portalstore.CheckPassword(c.Key.BasicPasswordHash, string(pass)) {
		return nil, 0, ErrUnknown
	}
	return c, 0, nil
}
