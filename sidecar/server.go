package sidecar

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/clock"
	"github.com/keylens/keylens/identity/hits"
)

// Config is what the sidecar serves and how.
type Config struct {
	Resolver *Resolver
	// KeyHeader is the request header that carries the credential;
	// default Authorization.
	KeyHeader string
	// IntrospectSecret, when set, must be presented by /introspect
	// callers as "Authorization: Bearer <secret>" (RFC 7662 §2.1).
	IntrospectSecret string
	// Signer, when set, adds X-Developer-Assertion and serves the JWKS.
	Signer *Signer
	// Gatherer serves /metrics; default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Healthy reports degradation for /healthz; nil means healthy.
	Healthy func() error
	Logger  *slog.Logger
	// Hits commits what POST /hits reports; nil turns /hits off.
	Hits keylens.HitWriter
	// HitsAndChangesSecret, when set, must be presented by POST /hits and
	// GET /changes callers as "Authorization: Bearer <secret>": both are
	// the Tyk plugin's. It is keylens's --hits-secret, which despite its
	// name guards both.
	HitsAndChangesSecret string
	// Feed serves GET /changes (the change feed, as far as Resolver has
	// applied it); nil turns it off.
	Feed Feed
	// Tokens issues and revokes OAuth access tokens: POST /oauth/token
	// and /oauth/revoke; nil turns them off.
	Tokens keylens.TokenService
	// TokenTTL is an access token's life; default
	// keylens.DefaultTokenTTL.
	TokenTTL time.Duration
}

// Server is the sidecar's HTTP face: NewServer, then Handler or
// NewFastHTTPServer.
type Server struct {
	Config

	handler                 fasthttp.RequestHandler
	m                       *Metrics
	assertN                 []byte
	assertOneByOne          bool // the assertion's header name is special to fasthttp (fasthttpSpecial)
	secret                  [32]byte
	hitsAndChangesSecretSum [32]byte
	// parsing bounds the POST /hits bodies decoded at once to half the
	// CPUs (one at least): a flood of hits leaves the others to every
	// other request, the store and the garbage collector.
	parsing  chan struct{}
	outcomes [numEndpoints][numResults]outcome
	metrics  fasthttp.RequestHandler
}

// Endpoints and the outcomes of a request, indexes into Server.outcomes, so
// that counting a request looks nothing up; their names are the metrics'
// labels.
type (
	endpoint int
	result   int
)

const (
	epAuth endpoint = iota
	epDeveloper
	epIntrospect
	epHits
	epChanges
	epToken
	epRevoke
	numEndpoints
)

const (
	outOK result = iota
	outUnknown
	outInactive
	outBad
	outUnauthzd
	outError
	numResults
)

var (
	endpointNames = [numEndpoints]string{"auth", "developer", "introspect", "hits", "changes", "oauth_token", "oauth_revoke"}
	resultNames   = [numResults]string{"ok", "unknown", "inactive", "bad_request", "unauthorized", "error"}
)

const (
	maxHeaderSize = 16 << 10
	maxBodySize   = hits.MaxBody // a POST /hits body; far more than a form
	// pooledBodySize bounds the request and response buffers kept for
	// reuse: every form and answer fits.
	pooledBodySize = 64 << 10
)

// NewServer checks c and builds the sidecar's handler.
func NewServer(c Config) (*Server, error) {
	if c.Resolver == nil {
		return nil, errors.New("sidecar: the server needs a Resolver")
	}
	if c.KeyHeader == "" {
		c.KeyHeader = "Authorization"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Gatherer == nil {
		c.Gatherer = prometheus.DefaultGatherer
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = keylens.DefaultTokenTTL
	} else if c.TokenTTL < time.Second {
		return nil, errors.New("sidecar: TokenTTL must be at least a second")
	}
	s := &Server{Config: c, m: c.Resolver.m, parsing: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
	s.assertN = []byte(s.Resolver.opts.Headers.Assertion)
	s.assertOneByOne = fasthttpSpecial(s.Resolver.opts.Headers.Assertion)
	s.secret = sha256.Sum256([]byte(s.IntrospectSecret))
	s.hitsAndChangesSecretSum = sha256.Sum256([]byte(s.HitsAndChangesSecret))
	for ep := range numEndpoints {
		for o := range numResults {
			s.outcomes[ep][o] = s.m.outcome(endpointNames[ep], resultNames[o])
		}
	}
	s.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	s.handler = s.serve
	return s, nil
}

// Handler returns the request handler.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handler }

// NewFastHTTPServer wraps the handler with limits that keep hostile input
// cheap: bounded headers and bodies, timeouts. A connection that sends
// nothing within ReadTimeout of opening (a proxy's spare), or nothing
// more within IdleTimeout of its last answer, is closed without a word:
// an unsolicited answer there would be read as the answer to the
// proxy's next request.
func (s *Server) NewFastHTTPServer() *fasthttp.Server {
	// A request keeps its body's buffer for the next request on its
	// connection: a POST /hits of up to a MiB on each of a fleet's
	// keep-alive connections would hold that much each for as long as
	// the connection lives. Larger bodies' buffers are let go instead
	// (this is fasthttp's process-wide setting; the sidecar is the
	// process's fasthttp server).
	fasthttp.SetBodySizePoolLimit(pooledBodySize, pooledBodySize)
	return &fasthttp.Server{
		Handler:               s.Handler(),
		Name:                  "keylens",
		ReadBufferSize:        maxHeaderSize,
		MaxRequestBodySize:    maxBodySize,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           120 * time.Second,
		NoDefaultServerHeader: true,
		NoDefaultDate:         true,
		Logger:                discardLogger{},
		ErrorHandler:          s.parseError,
	}
}

// parseError answers requests fasthttp could not read, in the sidecar's
// JSON shape and with the status that names the problem; a connection
// that timed out before sending a byte is closed instead.
func (s *Server) parseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	// fasthttp hands the connection's own error over, unwrapped, only
	// when not a byte of a request arrived; a timeout within a request
	// comes wrapped in its message.
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		_ = ctx.Conn().Close() // what fasthttp writes next goes nowhere
		return
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		jsonError(ctx, fasthttp.StatusRequestTimeout, "request not received in time")
	case errors.As(err, &small):
		jsonError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "request headers too large")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		jsonError(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
	default:
		jsonError(ctx, fasthttp.StatusBadRequest, "malformed request")
	}
	s.m.badRequests.Inc()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	cred, ok := s.credential(&ctx.Request.Header)
	if !ok {
		jsonError(ctx, fasthttp.StatusBadRequest, "send one "+s.KeyHeader+" header")
		return
	}
	r := lookup(ctx.Path())
	if r == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}
	if r.methods != "" && !r.allows(ctx.Method()) {
		methodNotAllowed(ctx, r.methods)
		return
	}
	r.serve(s, ctx, cred)
}

// credential returns the request's credential, the first value of the key
// header, and reports false when the request carries more than one
// credential: with two Authorization (or key) headers, proxies and servers
// disagree on which one counts. It reads each header once.
func (s *Server) credential(h *fasthttp.RequestHeader) (cred []byte, ok bool) {
	auths := h.PeekAll(fasthttp.HeaderAuthorization)
	if len(auths) > 1 {
		return nil, false
	}
	if s.KeyHeader == fasthttp.HeaderAuthorization {
		if len(auths) == 0 {
			return nil, true
		}
		return auths[0], true
	}
	keys := h.PeekAll(s.KeyHeader)
	switch len(keys) {
	case 0:
		return nil, true
	case 1:
		return keys[0], true
	}
	return nil, false
}

// route is one path the sidecar serves. routes is what serve dispatches
// on, and what a test checks against docs/openapi.yaml.
type route struct {
	path string
	// prefix: every path below path too (path ends in "/").
	prefix bool
	// methods are the methods served, as the Allow header lists them; ""
	// is every method (forward-auth sees the proxied request's).
	methods string
	// serve answers; credential is the key header's value (credential).
	serve func(s *Server, ctx *fasthttp.RequestCtx, credential []byte)
}

// noCredential adapts a handler that reads no credential for routes.
func noCredential(serve func(*Server, *fasthttp.RequestCtx)) func(*Server, *fasthttp.RequestCtx, []byte) {
	return func(s *Server, ctx *fasthttp.RequestCtx, _ []byte) { serve(s, ctx) }
}

var routes = []route{
	{path: "/auth", serve: (*Server).auth},
	// Envoy's ext_authz appends the original path to its path_prefix.
	{path: "/auth/", prefix: true, serve: (*Server).auth},
	{path: "/developer", methods: "GET, HEAD", serve: (*Server).developer},
	{path: "/introspect", methods: "POST", serve: noCredential((*Server).introspect)},
	{path: "/.well-known/jwks.json", methods: "GET, HEAD", serve: noCredential((*Server).jwks)},
	{path: "/hits", methods: "POST", serve: noCredential((*Server).hits)},
	{path: "/changes", methods: "GET", serve: noCredential((*Server).changes)},
	{path: "/oauth/token", methods: "POST", serve: noCredential((*Server).token)},
	{path: "/oauth/revoke", methods: "POST", serve: noCredential((*Server).revoke)},
	{path: "/metrics", methods: "GET, HEAD", serve: noCredential(func(s *Server, ctx *fasthttp.RequestCtx) { s.metrics(ctx) })},
	{path: "/healthz", methods: "GET, HEAD", serve: noCredential((*Server).healthz)},
}

// lookup is the route serving path; nil for none.
func lookup(path []byte) *route {
	for i := range routes {
		r := &routes[i]
		if string(path) == r.path || (r.prefix && bytes.HasPrefix(path, []byte(r.path))) {
			return r
		}
	}
	return nil
}

// allows reports whether the route serves method.
func (r *route) allows(method []byte) bool {
	for m := range strings.SplitSeq(r.methods, ", ") {
		if string(method) == m {
			return true
		}
	}
	return false
}

func (s *Server) jwks(ctx *fasthttp.RequestCtx) {
	if s.Signer == nil {
		jsonError(ctx, fasthttp.StatusNotFound, "assertions are off")
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(s.Signer.JWKS())
}

// auth is forward-auth (nginx auth_request, Traefik ForwardAuth, Envoy
// ext_authz): 200 with the identity headers, 401 unknown, 403 inactive. It
// copies nothing from the request into the response, so a client's own
// identity headers can never come back as if they were keylens's.
func (s *Server) auth(ctx *fasthttp.RequestCtx, credential []byte) {
	start := clock.Now()
	e, err := s.Resolver.resolveAt(ctx.ConnID(), credential, start.Wall)
	if out, refused := s.refuseUnusable(ctx, epAuth, e, err); refused {
		out.observe(ctx.ConnID(), start)
		return
	}
	h := &ctx.Response.Header
	assert := s.Signer != nil && len(s.assertN) > 0
	if e.setOneByOne || (assert && s.assertOneByOne) {
		e.eachHeader(h.SetCanonical)
		if assert {
			h.SetCanonical(s.assertN, s.Signer.assertionFor(e, start.Time()))
		}
	} else {
		// The lines fasthttp would have written for the same headers set
		// one by one (Entry), with one copy.
		h.AppendRaw(e.headerLines())
		if assert {
			h.AppendRaw(s.assertN)
			h.AppendRaw(colonSpace)
			h.AppendRaw(s.Signer.assertionFor(e, start.Time())) // a JWT: base64url and dots
			h.AppendRaw(crlf)
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	s.outcomes[epAuth][outOK].observe(ctx.ConnID(), start)
}

// developer answers the identity JSON of the key in the key header, with
// its assertion when assertions are on. A refusal is marked with
// identity.OutcomeHeader, which clients require (identity.Client.Fetch):
// no other service's 401 or 403 can pass for "unknown" or "inactive".
func (s *Server) developer(ctx *fasthttp.RequestCtx, credential []byte) {
	start := clock.Now()
	e, err := s.Resolver.resolveAt(ctx.ConnID(), credential, start.Wall)
	if out, refused := s.refuseUnusable(ctx, epDeveloper, e, err); refused {
		switch ctx.Response.StatusCode() {
		case fasthttp.StatusUnauthorized:
			ctx.Response.Header.Set(identity.OutcomeHeader, identity.OutcomeUnknown)
		case fasthttp.StatusForbidden:
			ctx.Response.Header.Set(identity.OutcomeHeader, identity.OutcomeInactive)
		}
		out.observe(ctx.ConnID(), start)
		return
	}
	if s.Signer != nil && len(s.assertN) > 0 {
		ctx.Response.Header.SetCanonical(s.assertN, s.Signer.assertionFor(e, start.Time()))
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(e.JSON())
	s.outcomes[epDeveloper][outOK].observe(ctx.ConnID(), start)
}

// refuseUnusable answers a request that resolved to no usable identity
// (an error, or an inactive developer) with its refusal, and reports
// whether it refused, with the outcome to observe. When e is usable it
// writes nothing and reports false.
func (s *Server) refuseUnusable(ctx *fasthttp.RequestCtx, ep endpoint, e *Entry, err error) (out outcome, refused bool) {
	switch {
	case err == nil && !e.Inactive:
		return outcome{}, false
	case err == nil:
		jsonError(ctx, fasthttp.StatusForbidden, "developer inactive")
		return s.outcomes[ep][outInactive], true
	case errors.Is(err, ErrUnknown):
		jsonError(ctx, fasthttp.StatusUnauthorized, "unknown or missing key")
		return s.outcomes[ep][outUnknown], true
	case tooManyPasswordChecks(ctx, err):
		return s.outcomes[ep][outError], true
	default:
		s.Logger.Error("resolving a credential failed", "endpoint", endpointNames[ep], "err", err)
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "key store unavailable")
		return s.outcomes[ep][outError], true
	}
}

// tooManyPasswordChecks answers 429 with Retry-After when err is a Basic
// password check refused (ErrBusy, GuessingError), and reports whether it
// was.
func tooManyPasswordChecks(ctx *fasthttp.RequestCtx, err error) bool {
	var guessing *GuessingError
	switch {
	case errors.Is(err, ErrBusy):
		ctx.Response.Header.Set("Retry-After", "1")
		jsonError(ctx, fasthttp.StatusTooManyRequests, "too many password checks at once; retry")
	case errors.As(err, &guessing):
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(guessing.RetrySeconds()))
		jsonError(ctx, fasthttp.StatusTooManyRequests, "too many failed passwords for this username; retry later")
	default:
		return false
	}
	return true
}

// introspectResponse is RFC 7662's answer with keylens's fields.
type introspectResponse struct {
	Active    bool   `json:"active"`
	Sub       string `json:"sub,omitempty"`
	Username  string `json:"username,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	*identity.Identity
}

var inactiveBody = []byte(`{"active":false}`)

// introspect is RFC 7662 token introspection: form token=…; an active key
// answers active with its developer; anything else exactly {"active":false}.
func (s *Server) introspect(ctx *fasthttp.RequestCtx) {
	start := clock.Now()
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	if !s.requireBearer(ctx, epIntrospect, s.IntrospectSecret, &s.secret, "keylens introspection", "invalid_client", start) {
		return
	}
	if !bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("application/x-www-form-urlencoded")) {
		jsonError(ctx, fasthttp.StatusBadRequest, "invalid_request: send token as application/x-www-form-urlencoded")
		s.outcomes[epIntrospect][outBad].observe(ctx.ConnID(), start)
		return
	}
	token := ctx.PostArgs().Peek("token")
	if len(token) == 0 {
		jsonError(ctx, fasthttp.StatusBadRequest, "invalid_request: token is required")
		s.outcomes[epIntrospect][outBad].observe(ctx.ConnID(), start)
		return
	}
	e, err := s.Resolver.resolveAt(ctx.ConnID(), token, start.Wall)
	switch {
	case err == nil && !e.Inactive:
	case err == nil:
		ctx.SetBody(inactiveBody)
		s.outcomes[epIntrospect][outInactive].observe(ctx.ConnID(), start)
		return
	case errors.Is(err, ErrUnknown):
		ctx.SetBody(inactiveBody)
		s.outcomes[epIntrospect][outUnknown].observe(ctx.ConnID(), start)
		return
	case tooManyPasswordChecks(ctx, err):
		s.outcomes[epIntrospect][outError].observe(ctx.ConnID(), start)
		return
	default:
		s.Logger.Error("introspection failed", "err", err)
		jsonError(ctx, fasthttp.StatusServiceUnavailable, "temporarily_unavailable")
		s.outcomes[epIntrospect][outError].observe(ctx.ConnID(), start)
		return
	}
	id := e.Identity()
	clientID := id.KeyID
	if id.ClientID != "" {
		clientID = id.ClientID // an OAuth token: its client
	}
	body, _ := json.Marshal(introspectResponse{
		Active: true, Sub: id.DeveloperID, Username: id.Email, ClientID: clientID,
		Scope: strings.Join(id.Policies, " "), Exp: id.Expires, Iat: id.IssuedAt, TokenType: "access_token", Identity: id,
	})
	ctx.SetBody(body)
	s.outcomes[epIntrospect][outOK].observe(ctx.ConnID(), start)
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if s.Healthy != nil {
		if err := s.Healthy(); err != nil {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			body, _ := json.Marshal(map[string]string{"status": "degraded", "reason": err.Error()})
			ctx.SetBody(body)
			return
		}
	}
	ctx.SetBodyString(`{"status":"ok"}`)
}

// requireBearer lets the request through when no secret is configured or
// it presents the secret (whose SHA-256 is hash); otherwise it answers 401
// with a WWW-Authenticate challenge for realm, counts it, and reports false.
func (s *Server) requireBearer(ctx *fasthttp.RequestCtx, ep endpoint, secret string, hash *[32]byte, realm, msg string, start clock.Stamp) bool {
	if secret == "" || bearerMatches(ctx, hash) {
		return true
	}
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
	jsonError(ctx, fasthttp.StatusUnauthorized, msg)
	s.outcomes[ep][outUnauthzd].observe(ctx.ConnID(), start)
	return false
}

// bearerMatches reports whether the request carries "Authorization: Bearer
// <secret>" for the secret whose SHA-256 is want, compared in constant
// time.
func bearerMatches(ctx *fasthttp.RequestCtx, want *[32]byte) bool {
	auth := ctx.Request.Header.Peek("Authorization")
	if !bytes.HasPrefix(auth, []byte("Bearer ")) {
		return false
	}
	presented := sha256.Sum256(bytes.TrimSpace(auth[len("Bearer "):]))
	return subtle.ConstantTimeCompare(presented[:], want[:]) == 1
}

func jsonError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	body, _ := json.Marshal(map[string]string{"error": msg})
	ctx.SetBody(body)
}

func methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set("Allow", allow)
	jsonError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
}
