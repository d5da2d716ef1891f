// Command plugin is keylens's Tyk Go plugin (go build -buildmode=plugin):
// it puts the developer behind a key and the fields of their key request
// into the session metadata and the upstream headers, and counts every
// key's hits and errors.
//
// Hooks, named in the API definition's custom_middleware (driver
// "goplugin"):
//
//	KeylensAuth      auth_check: custom auth through the keylens sidecar
//	KeylensPostAuth  post_key_auth: enrich a session the gateway authenticated
//	KeylensHits      response: count the hit for the key, API and status
//
// Settings come from the keylens object of the API's config data (a classic
// definition's config_data; an OAS definition's
// x-tyk-api-gateway.middleware.global.pluginConfig.data.value), with
// KEYLENS_SIDECAR_URL and KEYLENS_HITS_SECRET as fallbacks.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/user"

	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/identity/clock"
)

func main() {}

// logger writes to the gateway's standard error; never a raw key.
var logger = log.New(log.Writer(), "keylens plugin: ", log.LstdFlags)

// reject answers status with a JSON error body, which stops the chain.
func reject(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(body)
}

// state returns the state of the API serving r, or answers 401 (fail
// closed) when the API's keylens settings are wrong, logging that once.
func state(w http.ResponseWriter, r *http.Request) *apiState {
	st := stateOf(r)
	if st.err != nil {
		st.logOnce.Do(func() {
			logger.Printf("API %q: %s is invalid, refusing its requests: %v", st.apiID, st.from, st.err)
		})
		reject(w, http.StatusUnauthorized, "authorisation unavailable")
		return nil
	}
	return st
}

// lookup resolves the request's credential, answering for the hook when it
// cannot: 401 unknown, 403 inactive, 503 sidecar unreachable.
func lookup(w http.ResponseWriter, r *http.Request, st *apiState, now int64) (*entry, string) {
	cred := credentialOf(ctx.GetAuthToken(r), r)
	if cred == "" {
		reject(w, http.StatusUnauthorized, "a key is required")
		return nil, ""
	}
	e, err := st.res.resolve(r.Context(), cred, now, hintOf(r))
	if err != nil { // logged by state change (outage)
		reject(w, http.StatusServiceUnavailable, "authorisation unavailable")
		return nil, ""
	}
	switch e.err {
	case identity.ErrUnknownKey:
		reject(w, http.StatusUnauthorized, "unknown key")
		return nil, ""
	case identity.ErrInactive:
		reject(w, http.StatusForbidden, "developer inactive")
		return nil, ""
	}
	return e, cred
}

// The sessions KeylensAuth makes live briefly. The gateway writes a
// session to Redis after the request when asked to (persist_session) and
// also by itself, after every request of a key with a quota; a stored
// session authenticates its KeyID at every API of the gateway that checks
// auth tokens against the same Redis, until it expires. So a session
// expires shortly after its request: its Expires is the next whole second
// at least sessionMargin after the hook ran, by the wall clock (the
// gateway compares Expires, in seconds, with time.Now() just after the
// auth hook), i.e. 1 to 2 s away, or the credential's own expiry when
// earlier; and its lifetime in Redis is sessionLifetime. The margin is a
// whole second so that a gateway that stalls between the hook and its
// check (a loaded machine, a garbage collection) does not find a valid
// key's session expired.
const (
	sessionMargin   = time.Second
	sessionLifetime = 2 // seconds
)

// sessionExpiry is the Expires of a session made at now (Unix ns, the
// wall clock) for a credential expiring at credExpires (Unix s; 0 for
// none).
func sessionExpiry(now, credExpires int64) int64 {
	exp := (now + int64(sessionMargin) + int64(time.Second) - 1) / int64(time.Second)
	if credExpires != 0 && credExpires < exp {
		exp = credExpires
	}
	return exp
}

// keyIDOf is the session's KeyID for a credential: for a key, the token
// the gateway itself reads ("Bearer " removed, as its auth-token check
// removes it); for a Basic credential or a Bearer JWT, the Authorization
// value whole (a JWT by identity.IsJWT, the sidecar's rule), which no
// auth-token check takes for a key. Never the key's hash: a stored session
// authenticates its KeyID, and the hash is no secret.
func keyIDOf(cred string) string {
	if len(cred) > 7 && strings.EqualFold(cred[:7], "bearer ") {
		token := strings.TrimSpace(cred[7:])
		if identity.IsJWTString(token) {
			return cred
		}
		return token
	}
	return cred
}

// KeylensAuth authenticates the request's key through the sidecar and
// sets the session: the credential as KeyID, the API's org, alias,
// policies, a short expiry and the developer's metadata. Client-sent
// identity headers never reach the upstream.
func KeylensAuth(w http.ResponseWriter, r *http.Request) {
	st := state(w, r)
	if st == nil {
		return
	}
	stamping := st.stampsAuth()
	var start int64
	if stamping {
		start = clock.Mono()
	}
	now := clock.Coarse()
	st.res.strip.strip(r.Header)
	e, cred := lookup(w, r, st, now)
	if e == nil {
		return
	}
	s := &user.SessionState{
		// The credential the client presented: the gateway counts rate
		// limits and quotas by its hash, and the hash keylens knows the
		// key by stays in the metadata (keylens_key_id) and X-Key-Id.
		KeyID: keyIDOf(cred),
		Alias: e.id.Email,
		// The API's org: the gateway looks the session's policies up
		// in the session's org.
		OrgID:           st.orgID,
		ApplyPolicies:   append([]string(nil), e.id.Policies...), // the gateway may change its session's
		Expires:         sessionExpiry(time.Now().UnixNano(), e.id.Expires),
		SessionLifetime: sessionLifetime,
		MetaData:        make(map[string]interface{}, len(e.meta)),
	}
	setMeta(s.MetaData, e, true)
	if st.s.InjectHeaders {
		injectHeaders(r.Header, e)
	}
	ctx.SetSession(r, s, st.s.PersistSession)
	if stamping {
		stamp(r, st, &e.id.KeyID, start)
	}
}

// KeylensPostAuth runs after the gateway authenticated the key: it adds
// the developer's metadata the session lacks and injects the identity
// headers. A key keylens does not know passes with no identity headers; an
// inactive developer's key is refused. When the sidecar cannot be asked,
// the request passes without identity headers, or with sidecar_down
// "refuse" is answered 503.
func KeylensPostAuth(w http.ResponseWriter, r *http.Request) {
	st := state(w, r)
	if st == nil {
		return
	}
	stamping := st.stampsPostAuth()
	var start int64
	if stamping {
		start = clock.Mono()
	}
	st.res.strip.strip(r.Header)
	s := ctx.GetSession(r)
	if s == nil {
		return // not authenticated: nothing to add
	}
	cred := credentialOf(ctx.GetAuthToken(r), r)
	if cred == "" {
		return
	}
	e, err := st.res.resolve(r.Context(), cred, clock.Coarse(), hintOf(r))
	if err != nil { // logged by state change (outage)
		if st.s.SidecarDown == sidecarDownRefuse {
			reject(w, http.StatusServiceUnavailable, "authorisation unavailable")
		}
		return // the gateway authenticated the key: it passes, without identity headers
	}
	switch e.err {
	case identity.ErrUnknownKey:
		return
	case identity.ErrInactive:
		reject(w, http.StatusForbidden, "developer inactive")
		return
	}
	if s.MetaData == nil {
		s.MetaData = make(map[string]interface{}, len(e.meta))
	}
	setMeta(s.MetaData, e, false)
	if st.s.InjectHeaders {
		injectHeaders(r.Header, e)
	}
	if stamping {
		stamp(r, st, &e.id.KeyID, start)
	}
}

// KeylensHits counts the response for the key and the API, with the
// request's latency, in memory; a background shipper sends the counts to
// the sidecar's /hits. It never blocks or fails the request.
func KeylensHits(_ http.ResponseWriter, res *http.Response, r *http.Request) {
	if res == nil {
		return
	}
	now := clock.Coarse()
	if st, key, latency, ok := claimStamp(r); ok {
		st.hits.record(key, st.apiID, now, res.StatusCode, latency)
		return
	}
	// Not stamped (the slot was taken by another request, or the API's
	// stamping is still to be learnt): count it from the session, without
	// a latency.
	st := stateOf(r)
	st.sawHitsHook()
	s := ctx.GetSession(r)
	if s == nil || st.err != nil {
		return
	}
	key, _ := s.MetaData[metaKeyID].(string)
	if key == "" {
		return // not a key keylens resolved
	}
	st.hits.record(key, st.apiID, now, res.StatusCode, -1)
}
