package sidecar

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/clock"
)

// An authenticator resolves one kind of credential (one file each: Basic,
// JWT, API key). Given a request's credential it answers one of three
// things, as ory/oathkeeper's authenticators do: errNotMine (not its kind:
// the next one is asked), ErrUnknown (its kind, naming no valid key: an
// answer, not a failure), or the stored credential with its own expiry (a
// JWT's exp, Unix seconds; 0 for none). Any other error is a lookup that
// failed. An OAuth access token is the fourth kind.
type authenticator interface {
	authenticate(ctx context.Context, credential []byte) (*keylens.Credential, int64, error)
}

// errNotMine: the credential is not of the authenticator's kind.
var errNotMine = errors.New("not this kind of credential")

// authenticators are asked in order; the API key, which takes anything,
// last.
func (r *Resolver) authenticators() []authenticator {
	return []authenticator{basicAuthenticator{r}, jwtAuthenticator{r}, oauthAuthenticator{r}, tokenAuthenticator{r}}
}

// lookupKey finds the stored credential a request's credential names: the
// first authenticator that takes it decides.
func (r *Resolver) lookupKey(ctx context.Context, credential []byte) (*keylens.Credential, int64, error) {
	cred := bytes.TrimSpace(credential)
	if len(cred) == 0 || len(cred) > maxCredential {
		return nil, 0, ErrUnknown
	}
	for _, a := range r.authn {
		c, exp, err := a.authenticate(ctx, cred)
		if !errors.Is(err, errNotMine) {
			if err == nil {
				// A replaced key ends with its grace period, by this
				// process's clock too (a portal's may lag), and its
				// cached entry stops there by itself.
				if end := c.Key.ExpiresUnix(); end != 0 {
					if end <= clock.Now().Wall/1e9 {
						return nil, 0, ErrUnknown
					}
					if exp == 0 || end < exp {
						exp = end
					}
				}
			}
			return c, exp, err
		}
	}
	return nil, 0, ErrUnknown
}

// maxCredential bounds what is hashed and parsed; real keys and JWTs are
// far shorter.
const maxCredential = 8 << 10

// bearer strips an optional "Bearer " from cred.
func bearer(cred []byte) []byte {
	if hasPrefixFold(cred, "bearer ") {
		return bytes.TrimSpace(cred[7:])
	}
	return cred
}

func (r *Resolver) findKey(ctx context.Context, hash string) (*keylens.Credential, error) {
	start := time.Now()
	k, err := r.store.ResolveKey(ctx, hash)
	r.m.observeStore("key", start, err)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return nil, ErrUnknown
	}
	return k, err
}
