// Package gateway is not a Tyk package: it plays the gateway's part around
// a Go plugin's hooks in tests, as the gateway's middleware chain does.
// Plugin code must never import it.
package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/user"
)

// Request prepares r as the gateway does before the API's middleware: the
// definition in the context, and, when the gateway authenticated the key
// itself, the token and its session.
func Request(r *http.Request, def *apidef.APIDefinition, token string, session *user.SessionState) *http.Request {
	c := context.WithValue(r.Context(), ctx.Definition, def)
	if token != "" {
		c = context.WithValue(c, ctx.AuthToken, token)
	}
	if session != nil {
		c = context.WithValue(c, ctx.SessionData, session)
	}
	return r.WithContext(c)
}

// RunHook runs a request hook and reports whether the chain goes on: a hook
// that wrote a status >= 400 stops it, and its answer is the response.
func RunHook(hook func(http.ResponseWriter, *http.Request), r *http.Request) (*httptest.ResponseRecorder, bool) {
	rec := httptest.NewRecorder()
	hook(rec, r)
	return rec, rec.Code < 400
}

// SessionUpdateScheduled reports whether a hook asked to persist the
// session.
func SessionUpdateScheduled(r *http.Request) bool {
	v, _ := r.Context().Value(ctx.UpdateSession).(bool)
	return v
}
