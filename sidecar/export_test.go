package sidecar

import (
	"time"

	"github.com/valyala/fasthttp"
)

// SetPasswordCheck replaces the resolver's bcrypt comparison, so that a
// test can hold a password-check slot.
func SetPasswordCheck(r *Resolver, check func(hash, password string) bool) { r.checkPassword = check }

// ParseOAuthRequest exposes the token and revocation form parser to the
// fuzzer: what it read, or the OAuth error's status and code.
func ParseOAuthRequest(req *fasthttp.Request, revoke bool) (id, secret, grant, token string, status int, code string) {
	o, e := parseOAuthRequest(req, revoke)
	if e != nil {
		return "", "", "", "", e.status, e.code
	}
	return o.client.ID, o.client.Secret, o.grant, o.token, 0, ""
}

// JWKSFetches reports how often the central JWKS was fetched.
func JWKSFetches(r *Resolver) int64 { return r.central.keys.fetches.Load() }

// SetJWKSClock replaces the clock that rate-limits JWKS fetches.
func SetJWKSClock(r *Resolver, now func() time.Time) {
	r.central.keys.mu.Lock()
	defer r.central.keys.mu.Unlock()
	r.central.keys.now = now
}

// ParseJWKS exposes the JWKS parser to the fuzzer: the kids it kept.
func ParseJWKS(body []byte) ([]string, error) {
	keys, err := parseJWKS(body)
	var kids []string
	for kid := range keys {
		kids = append(kids, kid)
	}
	return kids, err
}

// BcryptWaiting reports how many Basic password checks wait for a slot.
func BcryptWaiting(r *Resolver) int {
	s := r.bcryptSlots
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting[0].Len() + s.waiting[1].Len()
}

// SetBcryptWaiting sets how many checks may wait for a slot, and for how
// long.
func SetBcryptWaiting(r *Resolver, n int, d time.Duration) {
	r.bcryptSlots.maxWaiting, r.bcryptSlots.maxWait = n, d
}

// ParsingSlots is the slots POST /hits bodies are decoded in.
func ParsingSlots(s *Server) chan struct{} { return s.parsing }
