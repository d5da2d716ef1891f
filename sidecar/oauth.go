package sidecar

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity/clock"
)

// The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) and token
// revocation (RFC 7009). A client authenticates with HTTP Basic
// (client_secret_basic) or with client_id and client_secret in the form
// (client_secret_post); the store checks the secret. The token is made
// here and only its hash leaves the sidecar.

// oauthError is an RFC 6749 §5.2 error answer.
type oauthError struct {
	status int
	code   string // invalid_request, invalid_client, unsupported_grant_type, …
	desc   string
}

func (e *oauthError) write(ctx *fasthttp.RequestCtx) {
	if e.status == fasthttp.StatusUnauthorized {
		// RFC 6749 §5.2: a 401 names the scheme the client may use.
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="keylens"`)
	}
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.code, e.desc})
	ctx.SetBody(body)
}

// oauthRequest is a token or revocation request, read and checked.
type oauthRequest struct {
	client keylens.ClientCredentials
	grant  string // grant_type
	token  string // the token to revoke
}

// maxFormValue bounds every form value and credential: real ones are
// under 100 bytes.
const maxFormValue = 1024

// parseOAuthRequest reads a token (revoke false) or revocation (revoke
// true) request: form-encoded, each parameter at most once (RFC 6749
// §3.2), one client authentication method. It never touches the store.
func parseOAuthRequest(req *fasthttp.Request, revoke bool) (*oauthRequest, *oauthError) {
	invalid := func(desc string) (*oauthRequest, *oauthError) {
		return nil, &oauthError{fasthttp.StatusBadRequest, "invalid_request", desc}
	}
	if !bytes.HasPrefix(req.Header.ContentType(), []byte("application/x-www-form-urlencoded")) {
		return invalid("send the parameters as application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(req.Body()))
	if err != nil {
		return invalid("the form does not parse")
	}
	allowed := []string{"grant_type", "scope", "client_id", "client_secret"}
	if revoke {
		allowed = []string{"token", "token_type_hint", "client_id", "client_secret"}
	}
	for name, values := range form {
		known := false
		for _, a := range allowed {
			known = known || name == a
		}
		if known && len(values) > 1 {
			return invalid(name + " is given more than once")
		}
		for _, v := range values {
			if len(v) > maxFormValue {
				return invalid(name + " is too long")
			}
		}
	}
	o := &oauthRequest{grant: form.Get("grant_type"), token: form.Get("token")}
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")
	auth := req.Header.Peek(fasthttp.HeaderAuthorization)
	switch {
	case len(auth) > 0:
		id, secret, ok := basicClient(auth)
		if !ok {
			return nil, &oauthError{fasthttp.StatusUnauthorized, "invalid_client", "Authorization must be Basic client_id:client_secret"}
		}
		if postSecret != "" || (postID != "" && postID != id) {
			return invalid("authenticate the client one way: HTTP Basic or client_secret in the form, not both")
		}
		o.client = keylens.ClientCredentials{ID: id, Secret: secret}
	case postID != "" && postSecret != "":
		o.client = keylens.ClientCredentials{ID: postID, Secret: postSecret}
	default:
		return nil, &oauthError{fasthttp.StatusUnauthorized, "invalid_client",
			"authenticate the client: HTTP Basic (client_secret_basic) or client_id and client_secret in the form (client_secret_post)"}
	}
	if revoke {
		if o.token == "" {
			return invalid("token is required")
		}
		return o, nil
	}
	switch o.grant {
	case "":
		return invalid("grant_type is required")
	case "client_credentials":
		return o, nil
	default:
		return nil, &oauthError{fasthttp.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported"}
	}
}

// basicClient reads "Basic base64(client_id:client_secret)". RFC 6749
// §2.3.1 form-encodes both before base64; most clients do not, and
// keylens's ids and secrets need no encoding, so a value is decoded only
// when it holds a '%' (a '+' stays a '+': secrets are base64).
func basicClient(auth []byte) (id, secret string, ok bool) {
	if !hasPrefixFold(auth, "basic ") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(auth[6:])))
	if err != nil {
		return "", "", false
	}
	id, secret, ok = strings.Cut(string(raw), ":")
	if !ok || id == "" || len(id) > maxFormValue || len(secret) > maxFormValue {
		return "", "", false
	}
	if id, err = unescapeIfEncoded(id); err != nil {
		return "", "", false
	}
	if secret, err = unescapeIfEncoded(secret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

func unescapeIfEncoded(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	return url.PathUnescape(s)
}

// storeRefusal is the OAuth answer to the store's refusal of a client.
func storeRefusal(err error) *oauthError {
	switch keylens.ErrorCode(err) {
	case keylens.EUNAUTHORIZED:
		return &oauthError{fasthttp.StatusUnauthorized, "invalid_client", "unknown client or wrong secret"}
	case keylens.ECONFLICT:
		return &oauthError{fasthttp.StatusBadRequest, "unauthorized_client", keylens.ErrorMessage(err)}
	case keylens.EINVALID:
		return &oauthError{fasthttp.StatusBadRequest, "invalid_request", keylens.ErrorMessage(err)}
	}
	return &oauthError{fasthttp.StatusServiceUnavailable, "temporarily_unavailable", "the key store is unavailable"}
}

// token is POST /oauth/token: the client-credentials grant.
func (s *Server) token(ctx *fasthttp.RequestCtx) {
	if s.Tokens == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "OAuth tokens are off")
		return
	}
	start := clock.Now()
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("Pragma", "no-cache")
	o, oerr := parseOAuthRequest(&ctx.Request, false)
	if oerr != nil {
		oerr.write(ctx)
		s.outcomes[epToken][oauthOutcome(oerr)].observe(ctx.ConnID(), start)
		return
	}
	token, hash := keylens.NewAccessToken()
	sctx, cancel := storeContext()
	defer cancel()
	g, err := s.Tokens.IssueToken(sctx, o.client, hash, s.TokenTTL)
	if err != nil {
		refusal := storeRefusal(err)
		if refusal.status == fasthttp.StatusServiceUnavailable {
			s.Logger.Error("issuing an OAuth token failed", "err", err)
		}
		refusal.write(ctx)
		s.outcomes[epToken][oauthOutcome(refusal)].observe(ctx.ConnID(), start)
		return
	}
	ctx.SetContentType("application/json")
	body, _ := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
	}{token, "bearer", g.ExpiresAt - g.IssuedAt, strings.Join(g.Policies, " ")})
	ctx.SetBody(body)
	s.outcomes[epToken][outOK].observe(ctx.ConnID(), start)
}

// revoke is POST /oauth/revoke (RFC 7009): the client revokes one of its
// tokens; a token that is unknown, expired or not the client's answers
// 200 as well (§2.2), and changes nothing.
func (s *Server) revoke(ctx *fasthttp.RequestCtx) {
	if s.Tokens == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "OAuth tokens are off")
		return
	}
	start := clock.Now()
	ctx.Response.Header.Set("Cache-Control", "no-store")
	o, oerr := parseOAuthRequest(&ctx.Request, true)
	if oerr != nil {
		oerr.write(ctx)
		s.outcomes[epRevoke][oauthOutcome(oerr)].observe(ctx.ConnID(), start)
		return
	}
	hash := keylens.TokenHash(o.token)
	sctx, cancel := storeContext()
	defer cancel()
	if err := s.Tokens.RevokeClientToken(sctx, o.client, hash); err != nil {
		refusal := storeRefusal(err)
		if refusal.status == fasthttp.StatusServiceUnavailable {
			s.Logger.Error("revoking an OAuth token failed", "err", err)
		}
		refusal.write(ctx)
		s.outcomes[epRevoke][oauthOutcome(refusal)].observe(ctx.ConnID(), start)
		return
	}
	// The change feed brings this to every sidecar; this one need not
	// wait for it.
	s.Resolver.cache.Invalidate(hash, "", false)
	ctx.SetStatusCode(fasthttp.StatusOK)
	s.outcomes[epRevoke][outOK].observe(ctx.ConnID(), start)
}

// storeContext is the context of a handler's own call to the store (a
// token's issue or revocation, the change feed's reads), bounded to 10 s.
// No store call of the sidecar gets the RequestCtx, nor a context derived
// from it: fasthttp reuses that once the handler returns, while goroutines
// the store starts on a context (the SQLite driver's interrupt watcher)
// may still read it. Lookups run under context.Background (resolveAt), a
// hit batch's usernames under usernameLookupTimeout.
func storeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func oauthOutcome(e *oauthError) result {
	switch e.status {
	case fasthttp.StatusUnauthorized:
		return outUnauthzd
	case fasthttp.StatusServiceUnavailable:
		return outError
	}
	return outBad
}
