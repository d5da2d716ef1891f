// Package gateway is not a Tyk package: it plays the gateway's part around
// a Go plugin's hooks in tests, as the gateway's middleware chain does.
// Plugin code must never import it.
//
// What it models, from the gateway's documented behaviour (keylens's
// docs/tyk-facts.md, "The Go plugin surface"): a Redis of sessions under
// "apikey-" + the hash of the key name, written after any middleware that
// touched the request's session (ctx.SetSession with scheduleUpdate, or a
// quota count), under the request's auth token, which SetSession makes the
// session's KeyID; the gateway's own auth-token check against that Redis;
// policies looked up in the session's org, a policy not found there ending
// the request with 200 and an empty body, upstream never called (Tyk
// 5.12+), which Do reports as a test failure; the expiry and inactivity
// check; hooks that stop the chain by writing a status >= 400.
package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/apidef/oas"
	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/internal/double"
	"github.com/TykTechnologies/tyk/storage"
	"github.com/TykTechnologies/tyk/user"
)

// Request prepares r as the gateway does before the API's middleware: the
// gateway's own context values, the definition, and, when the gateway
// authenticated the key itself, the token and its session.
func Request(r *http.Request, def *apidef.APIDefinition, token string, session *user.SessionState) *http.Request {
	return request(r, token, session, ctx.Definition, def)
}

func request(r *http.Request, token string, session *user.SessionState, defKey ctx.Key, def any) *http.Request {
	c := withGatewayValues(r.Context(), r)
	if token != "" {
		c = context.WithValue(c, ctx.AuthToken, token)
	}
	if session != nil {
		if session.KeyHashEmpty() && token != "" {
			session.SetKeyHash(storage.HashKey(token, double.HashKeys))
		}
		c = context.WithValue(c, ctx.SessionData, session)
	}
	c = context.WithValue(c, defKey, def)
	return r.WithContext(c)
}

// withGatewayValues adds the values the gateway's earlier middleware put in
// every request's context (version, method, original URL, loop and
// throttle levels, …): a plugin's context lookups walk past them.
func withGatewayValues(c context.Context, r *http.Request) context.Context {
	for _, kv := range []struct {
		k ctx.Key
		v any
	}{
		{ctx.RequestMethod, r.Method}, {ctx.OrigRequestURL, r.URL}, {ctx.VersionName, "Default"},
		{ctx.VersionDefault, "Default"}, {ctx.LoopLevel, 0}, {ctx.LoopLevelLimit, 5}, {ctx.ThrottleLevel, 0},
		{ctx.ThrottleLevelLimit, 0}, {ctx.CheckLoopLimits, true}, {ctx.RequestStatus, 0},
	} {
		c = context.WithValue(c, kv.k, kv.v)
	}
	return c
}

// RunHook runs a request hook alone and reports whether the chain goes on:
// a hook that wrote a status >= 400 stops it, and its answer is the
// response.
func RunHook(hook func(http.ResponseWriter, *http.Request), r *http.Request) (*httptest.ResponseRecorder, bool) {
	rec := httptest.NewRecorder()
	hook(rec, r)
	return rec, rec.Code < 400
}

// SessionUpdateScheduled reports whether the request's session is marked
// for a write to the store.
func SessionUpdateScheduled(r *http.Request) bool {
	s := ctx.GetSession(r)
	return s != nil && s.IsModified()
}

// DefinitionClones counts ctx.GetDefinition's deep copies so far.
func DefinitionClones() int64 { return double.DefinitionClones.Load() }

// Gateway is one gateway: its Redis and its policies.
type Gateway struct {
	Redis *Redis
	// SessionLifetime is the APIs' session_lifetime (seconds; 0 keeps a
	// persisted session forever), for sessions that set none.
	SessionLifetime int64
	// OASInResponseHooks models v5.11 and later, where the response hooks
	// of an OAS API get its *oas.OAS in their context as its request hooks
	// do; before, from v5.8, they get the classic definition the gateway
	// extracted from it.
	OASInResponseHooks bool
	// PauseAfterAuth stalls the gateway between the authentication hook
	// and its expiry check, as a loaded or paused gateway process does.
	PauseAfterAuth time.Duration

	mu       sync.Mutex
	policies map[string]map[string]Policy // org → policy id → policy
}

// Policy is a gateway policy, as far as the double applies it.
type Policy struct {
	ID, OrgID  string
	IsInactive bool  // deactivates every key that applies it
	QuotaMax   int64 // > 0: requests are counted, and the session persisted after each
}

// New returns a gateway with an empty Redis and no policies.
func New() *Gateway {
	return &Gateway{Redis: &Redis{m: map[string]stored{}, quotas: map[string]int64{}}, policies: map[string]map[string]Policy{}}
}

// AddPolicy adds or replaces a policy in its org.
func (g *Gateway) AddPolicy(p Policy) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.policies[p.OrgID] == nil {
		g.policies[p.OrgID] = map[string]Policy{}
	}
	g.policies[p.OrgID][p.ID] = p
}

func (g *Gateway) policy(org, id string) (Policy, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.policies[org][id]
	return p, ok
}

// Redis is the gateway's session store: sessions by "apikey-" + key hash,
// with the time-to-live of the session's lifetime.
type Redis struct {
	mu     sync.Mutex
	m      map[string]stored
	quotas map[string]int64
	writes atomic.Int64
}

type stored struct {
	s        user.SessionState
	deadline time.Time // zero: no TTL
}

// Writes counts session writes so far.
func (db *Redis) Writes() int64 { return db.writes.Load() }

// Session returns the session stored under a key hash, if it has not
// expired from Redis.
func (db *Redis) Session(hash string) (user.SessionState, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	st, ok := db.m["apikey-"+hash]
	if !ok || (!st.deadline.IsZero() && time.Now().After(st.deadline)) {
		return user.SessionState{}, false
	}
	return st.s.Clone(), true
}

// Keys lists the stored key names ("apikey-<hash>").
func (db *Redis) Keys() []string {
	db.mu.Lock()
	defer db.mu.Unlock()
	var keys []string
	for k, st := range db.m {
		if st.deadline.IsZero() || time.Now().Before(st.deadline) {
			keys = append(keys, k)
		}
	}
	return keys
}

func (db *Redis) put(hash string, s *user.SessionState, lifetime int64) {
	st := stored{s: s.Clone()}
	if lifetime > 0 {
		st.deadline = time.Now().Add(time.Duration(lifetime) * time.Second)
	}
	db.mu.Lock()
	db.m["apikey-"+hash] = st
	db.mu.Unlock()
	db.writes.Add(1)
}

func (db *Redis) countQuota(name string) {
	db.mu.Lock()
	db.quotas[name]++
	db.mu.Unlock()
}

// API is one API of the gateway: its definition and the plugin hooks its
// custom_middleware names.
type API struct {
	Def *apidef.APIDefinition
	// OAS is set for an API defined in Tyk's OAS format (OASAPI); Def is
	// then the classic definition the gateway extracted from it.
	OAS *oas.OAS
	// Auth is the auth_check hook (custom Go auth); nil means the
	// gateway's own auth-token check against its Redis.
	Auth     func(http.ResponseWriter, *http.Request)
	PostAuth []func(http.ResponseWriter, *http.Request)
	Response []func(http.ResponseWriter, *http.Response, *http.Request)
	// Upstream answers proxied requests; default 200 "upstream".
	Upstream http.HandlerFunc
}

// Result is how a request through the chain ended.
type Result struct {
	Code     int
	Body     string
	Header   http.Header // the response's
	Upstream *http.Request
	Session  *user.SessionState
	Request  *http.Request // as the chain left it
}

// Do runs r through the API's chain as the gateway does. It reports a test
// failure when the chain ends with a status below 400 without calling the
// upstream: the gateway's answer to a session whose policy is not in the
// session's org, and never a plugin's intent.
func (g *Gateway) Do(t testing.TB, api *API, r *http.Request) Result {
	t.Helper()
	res := g.run(api, r)
	if res.Code < 400 && res.Upstream == nil {
		t.Errorf("%s %s: the gateway answered %d with body %q and never called the upstream", r.Method, r.URL.Path, res.Code, res.Body)
	}
	return res
}

func (g *Gateway) run(api *API, r *http.Request) Result {
	r = r.WithContext(withGatewayValues(r.Context(), r))
	rec := httptest.NewRecorder()
	done := func() Result {
		return Result{Code: rec.Code, Body: rec.Body.String(), Header: rec.Header(), Session: ctx.GetSession(r), Request: r}
	}
	fail := func(code int, msg string) Result {
		rec.Code = code
		rec.Body.WriteString(`{"error":"` + msg + `"}`)
		return done()
	}
	hook := func(h func(http.ResponseWriter, *http.Request)) bool {
		api.setDefinition(r, true)
		w := &writer{ResponseWriter: rec}
		h(w, r)
		if w.wrote {
			return false // >= 400 stops the chain; so does a 2xx a hook answers itself
		}
		g.updateSession(r)
		return true
	}

	// Authentication.
	if api.Auth != nil {
		if !hook(api.Auth) {
			return done()
		}
		time.Sleep(g.PauseAfterAuth)
	} else {
		key := stripBearer(r.Header.Get("Authorization"))
		if key == "" {
			return fail(http.StatusUnauthorized, "Authorization field missing")
		}
		s, ok := g.Redis.Session(storage.HashKey(key, double.HashKeys))
		if !ok {
			return fail(http.StatusForbidden, "Access to this API has been disallowed")
		}
		setContext(r, context.WithValue(r.Context(), ctx.AuthToken, key))
		ctx.SetSession(r, &s, false)
	}
	s := ctx.GetSession(r)
	if s == nil {
		return fail(http.StatusBadRequest, "Session state is missing or unset! Please make sure that auth headers are properly applied")
	}

	// Policies, within the session's org (Tyk 5.12+): one not found there
	// ends the request with 200 and an empty body.
	for _, id := range s.ApplyPolicies {
		p, ok := g.policy(s.OrgID, id)
		if !ok {
			rec.Code = http.StatusOK
			return done()
		}
		s.IsInactive = s.IsInactive || p.IsInactive
		s.QuotaMax = max(s.QuotaMax, p.QuotaMax)
	}

	// Expiry and activity.
	if s.IsInactive {
		return fail(http.StatusForbidden, "Key is inactive, please renew")
	}
	if s.Expires >= 1 && time.Now().After(time.Unix(s.Expires, 0)) {
		return fail(http.StatusUnauthorized, "Key has expired, please renew")
	}

	// Quotas count in Redis by the hash of KeyID, and touch the session.
	if s.QuotaMax > 0 {
		g.Redis.countQuota("quota-" + storage.HashKey(s.KeyID, double.HashKeys))
		s.Touch()
		g.updateSession(r)
	}

	for _, h := range api.PostAuth {
		if !hook(h) {
			return done()
		}
	}

	// The upstream.
	up := r.Clone(context.Background())
	upRec := httptest.NewRecorder()
	upstream := api.Upstream
	if upstream == nil {
		upstream = func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "upstream") }
	}
	upstream(upRec, up)
	resp := upRec.Result()
	for _, h := range api.Response {
		api.setDefinition(r, g.OASInResponseHooks)
		h(rec, resp, r)
	}
	for k, v := range resp.Header {
		rec.Header()[k] = v
	}
	rec.Code = resp.StatusCode
	rec.Body.Write(upRec.Body.Bytes())
	out := done()
	out.Upstream = up
	return out
}

// setDefinition puts the API's definition in r's context before a hook:
// an OAS API's *oas.OAS where the gateway hands it over (oas), else the
// classic definition.
func (api *API) setDefinition(r *http.Request, oas bool) {
	if api.OAS != nil && oas {
		ctx.SetOASDefinition(r, api.OAS)
	} else {
		ctx.SetDefinition(r, api.Def)
	}
}

// updateSession writes a touched session to Redis under the hash of the
// request's auth token, for the session's lifetime, as the gateway does
// after each middleware.
func (g *Gateway) updateSession(r *http.Request) {
	s, token := ctx.GetSession(r), ctx.GetAuthToken(r)
	if s == nil || token == "" || !s.IsModified() {
		return
	}
	lifetime := s.SessionLifetime
	if lifetime <= 0 {
		lifetime = g.SessionLifetime
	}
	g.Redis.put(storage.HashKey(token, double.HashKeys), s, lifetime)
	s.Reset()
}

// writer records whether a hook answered the request.
type writer struct {
	http.ResponseWriter
	wrote bool
}

func (w *writer) WriteHeader(code int) { w.wrote = true; w.ResponseWriter.WriteHeader(code) }
func (w *writer) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func setContext(r *http.Request, c context.Context) { *r = *r.WithContext(c) }

// stripBearer removes a leading "Bearer " (any case), as the gateway's
// auth-token check does.
func stripBearer(v string) string {
	if len(v) > 6 && strings.EqualFold(v[:7], "bearer ") {
		return v[7:]
	}
	return v
}

// Describe is a one-line account of a result, for test failures.
func (res Result) Describe() string {
	return fmt.Sprintf("%d %s (upstream called: %v)", res.Code, strings.TrimSpace(res.Body), res.Upstream != nil)
}
