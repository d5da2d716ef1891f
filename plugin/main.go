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
// Settings come from the definition's config_data.keylens object, with
// KEYLENS_SIDECAR_URL and KEYLENS_HITS_SECRET as fallbacks.
package main

import (
	"encoding/json"
	"log"
	"net/http"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/user"

	"github.com/keylens/keylens/identity"
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

// definitionOf returns the definition of the API serving r: the gateway's
// own pointer, which it puts in the request's context before calling a
// hook. Never modified. (ctx.GetDefinition would return a deep copy made
// by reflection on every call: tens of microseconds in a real gateway, and
// a new pointer each time, which stateFor would take for a new API.)
func definitionOf(r *http.Request) *apidef.APIDefinition {
	def, _ := r.Context().Value(ctx.Definition).(*apidef.APIDefinition)
	return def
}

// state returns the request's API state, or answers 401 (fail closed) when
// the API's keylens settings are wrong, logging that once.
func state(w http.ResponseWriter, r *http.Request) *apiState {
	def := definitionOf(r)
	st := stateFor(def)
	if st.err != nil {
		st.logOnce.Do(func() {
			api := ""
			if def != nil {
				api = def.APIID
			}
			logger.Printf("API %q: config_data.keylens is invalid, refusing its requests: %v", api, st.err)
		})
		reject(w, http.StatusUnauthorized, "authorisation unavailable")
		return nil
	}
	return st
}

// lookup resolves the request's credential, answering for the hook when it
// cannot: 401 unknown, 403 inactive, 503 sidecar unreachable.
func lookup(w http.ResponseWriter, r *http.Request, st *apiState) *entry {
	cred := credentialOf(ctx.GetAuthToken(r), r)
	if cred == "" {
		reject(w, http.StatusUnauthorized, "a key is required")
		return nil
	}
	e, err := st.res.resolve(r.Context(), cred, hintOf(r))
	if err != nil {
		if r.Context().Err() == nil {
			logger.Printf("asking the keylens sidecar failed: %v", err)
		}
		reject(w, http.StatusServiceUnavailable, "authorisation unavailable")
		return nil
	}
	switch e.err {
	case identity.ErrUnknownKey:
		reject(w, http.StatusUnauthorized, "unknown key")
		return nil
	case identity.ErrInactive:
		reject(w, http.StatusForbidden, "developer inactive")
		return nil
	}
	return e
}

// KeylensAuth authenticates the request's key through the sidecar and
// sets the session: alias, org, policies, expiry and the developer's
// metadata. Client-sent identity headers never reach the upstream.
func KeylensAuth(w http.ResponseWriter, r *http.Request) {
	st := state(w, r)
	if st == nil {
		return
	}
	st.res.strip.strip(r.Header)
	e := lookup(w, r, st)
	if e == nil {
		return
	}
	s := &user.SessionState{
		// The session's id is the key's hash: the gateway keys rate
		// limits and quotas by it, and it never holds the raw key.
		KeyID:         e.id.KeyID,
		Alias:         e.id.Email,
		OrgID:         e.id.OrgID,
		ApplyPolicies: append([]string(nil), e.id.Policies...), // the gateway may change its session's
		Expires:       e.id.Expires,
		MetaData:      make(map[string]interface{}, len(e.meta)),
	}
	setMeta(s.MetaData, e, true)
	if st.s.InjectHeaders {
		injectHeaders(r.Header, e)
	}
	ctx.SetSession(r, s, st.s.PersistSession)
}

// KeylensPostAuth runs after the gateway authenticated the key: it adds
// the developer's metadata the session lacks and injects the identity
// headers. A key keylens does not know passes with no identity headers; an
// inactive developer's key is refused.
func KeylensPostAuth(w http.ResponseWriter, r *http.Request) {
	st := state(w, r)
	if st == nil {
		return
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
	e, err := st.res.resolve(r.Context(), cred, hintOf(r))
	if err != nil {
		if r.Context().Err() == nil {
			logger.Printf("asking the keylens sidecar failed: %v", err)
		}
		reject(w, http.StatusServiceUnavailable, "authorisation unavailable")
		return
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
}

// KeylensHits counts the response for the session's key and the API, in
// memory; a background shipper sends the counts to the sidecar's /hits.
// It never blocks or fails the request.
func KeylensHits(_ http.ResponseWriter, res *http.Response, r *http.Request) {
	if res == nil {
		return
	}
	s := ctx.GetSession(r)
	if s == nil {
		return
	}
	key, _ := s.MetaData[metaKeyID].(string)
	if key == "" {
		return // not a key keylens resolved
	}
	def := definitionOf(r)
	st := stateFor(def)
	if st.err != nil {
		return
	}
	api := ""
	if def != nil {
		api = def.APIID
	}
	st.hits.record(key, api, res.StatusCode)
}
