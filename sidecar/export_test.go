package sidecar

import "github.com/valyala/fasthttp"

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
