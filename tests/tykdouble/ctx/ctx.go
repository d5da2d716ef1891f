// Package ctx doubles github.com/TykTechnologies/tyk/ctx: the request
// context through which a Go plugin reads and sets the session.
//
// Semantics, as the gateway's: values live in the request's context; a
// setter replaces the request's context in place (*r = *r.WithContext(…)),
// so the caller's *http.Request sees it. SetSession fills an empty KeyID
// from the request's auth token, sets the key hash (the hash of KeyID,
// hashed keys on), makes KeyID the request's auth token, and with
// scheduleUpdate touches the session, which the gateway then writes to its
// store under the hash of the auth token. GetDefinition returns a deep
// copy of the definition, made by reflection on every call; the pointer
// itself is the context's value under Definition. For an API defined in
// Tyk's OAS format the gateway puts its *oas.OAS under OASDefinition
// instead (request hooks from v5.8, response hooks from v5.11), and
// GetOASDefinition deep-copies it alike.
package ctx

import (
	"context"
	"net/http"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/apidef/oas"
	"github.com/TykTechnologies/tyk/internal/double"
	"github.com/TykTechnologies/tyk/storage"
	"github.com/TykTechnologies/tyk/user"
)

// Key is the type of the context keys.
type Key uint

// The context keys, in the gateway's order.
const (
	SessionData Key = iota
	// Deprecated: the gateway now marks the session itself (Touch).
	UpdateSession
	AuthToken
	HashedAuthToken
	VersionData
	VersionName
	VersionDefault
	OrgSessionContext
	ContextData
	RetainHost
	TrackThisEndpoint
	DoNotTrackThisEndpoint
	UrlRewritePath
	RequestMethod
	OrigRequestURL
	LoopLevel
	LoopLevelLimit
	ThrottleLevel
	ThrottleLevelLimit
	Trace
	CheckLoopLimits
	UrlRewriteTarget
	TransformedRequestMethod
	Definition
	RequestStatus
	GraphQLRequest
	GraphQLIsWebSocketUpgrade
	OASOperation
	// OASDefinition holds the *oas.OAS of an API defined in Tyk's OAS
	// format, where a classic API has its definition under Definition.
	OASDefinition
)

func setContext(r *http.Request, c context.Context) {
	r2 := r.WithContext(c)
	*r = *r2
}

// GetSession returns the request's session, or nil before authentication.
func GetSession(r *http.Request) *user.SessionState {
	if s, ok := r.Context().Value(SessionData).(*user.SessionState); ok {
		return s
	}
	return nil
}

// SetSession stores s as the request's session. An empty KeyID takes the
// request's auth token, and KeyID becomes the auth token. scheduleUpdate
// asks the gateway to persist s.
func SetSession(r *http.Request, s *user.SessionState, scheduleUpdate bool, hashKey ...bool) {
	if s == nil {
		panic("setting a nil context SessionData")
	}
	if s.KeyID == "" {
		s.KeyID = GetAuthToken(r)
	}
	hashKeys := double.HashKeys
	if len(hashKey) > 1 { // sic: the gateway reads the argument only when given two
		hashKeys = hashKey[0]
	}
	if s.KeyHashEmpty() {
		s.SetKeyHash(storage.HashKey(s.KeyID, hashKeys))
	}
	c := context.WithValue(r.Context(), SessionData, s)
	c = context.WithValue(c, AuthToken, s.KeyID)
	if scheduleUpdate {
		s.Touch()
	}
	setContext(r, c)
}

// GetAuthToken returns the key the request authenticated with, or "".
func GetAuthToken(r *http.Request) string {
	if t, ok := r.Context().Value(AuthToken).(string); ok {
		return t
	}
	return ""
}

// SetDefinition puts the API's definition in the request's context, as the
// gateway does before it calls a Go plugin hook.
func SetDefinition(r *http.Request, s *apidef.APIDefinition) {
	setContext(r, context.WithValue(r.Context(), Definition, s))
}

// GetDefinition returns a deep copy of the definition of the API serving
// the request, made by reflection: costly on a request path.
func GetDefinition(r *http.Request) *apidef.APIDefinition {
	return cloneOf[apidef.APIDefinition](r, Definition)
}

// SetOASDefinition puts an OAS API's definition in the request's context,
// as the gateway does before it calls a Go plugin hook of such an API.
func SetOASDefinition(r *http.Request, s *oas.OAS) {
	setContext(r, context.WithValue(r.Context(), OASDefinition, s))
}

// GetOASDefinition returns a deep copy of the OAS definition of the API
// serving the request, made by reflection, or nil for a classic API.
func GetOASDefinition(r *http.Request) *oas.OAS {
	return cloneOf[oas.OAS](r, OASDefinition)
}

// cloneOf deep-copies the *T under k, counting the copy.
func cloneOf[T any](r *http.Request, k Key) *T {
	if d, ok := r.Context().Value(k).(*T); ok {
		double.DefinitionClones.Add(1)
		return double.Clone(d)
	}
	return nil
}
