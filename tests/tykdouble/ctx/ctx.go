// Package ctx doubles github.com/TykTechnologies/tyk/ctx: the request
// context through which a Go plugin reads and sets the session.
//
// Semantics, as the gateway's: values live in the request's context; a
// setter replaces the request's context in place (*r = *r.WithContext(…)),
// so the caller's *http.Request sees it. SetSession fills an empty KeyID
// from the request's auth token; scheduleUpdate asks the gateway to persist
// the session.
package ctx

import (
	"context"
	"net/http"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/user"
)

// Key is the type of the context keys.
type Key uint

// The context keys the double uses.
const (
	SessionData Key = iota
	UpdateSession
	AuthToken
	Definition
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
// request's auth token. scheduleUpdate asks the gateway to persist s.
func SetSession(r *http.Request, s *user.SessionState, scheduleUpdate bool, hashKey ...bool) {
	if s == nil {
		panic("SetSession called with nil session")
	}
	if s.KeyID == "" {
		s.KeyID = GetAuthToken(r)
	}
	c := context.WithValue(r.Context(), SessionData, s)
	if scheduleUpdate {
		c = context.WithValue(c, UpdateSession, true)
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

// GetDefinition returns the definition of the API serving the request.
func GetDefinition(r *http.Request) *apidef.APIDefinition {
	if d, ok := r.Context().Value(Definition).(*apidef.APIDefinition); ok {
		return d
	}
	return nil
}
