// Package rest serves the Tyk Classic Portal REST API on net/http, so that
// portal clients written for Tyk work against keylens unmodified.
package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/docs"
	"github.com/keylens/keylens/guard"
)

// MaxBodyBytes bounds every request body; larger bodies answer 413.
const MaxBodyBytes = 1 << 20

// Config is what the API serves and how.
type Config struct {
	Developers  keylens.DeveloperService
	Catalogue   keylens.CatalogueService
	Keys        keylens.KeyService
	Changes     keylens.ChangeService
	Credentials keylens.CredentialService
	Hits        keylens.HitService
	// Tokens issues and revokes OAuth access tokens for sidecars that
	// run against this API; TokenAdmin revokes them as the admin.
	Tokens     keylens.TokenService
	TokenAdmin keylens.TokenAdminService
	// Revoker performs the Tyk Classic Portal API's two token revocations; default
	// LocalRevoker over TokenAdmin.
	Revoker keylens.TokenRevoker
	// HitWriter, when set, takes hit batches instead of Hits: a
	// committer that groups them into fewer transactions.
	HitWriter keylens.HitWriter
	// AdminKeyHash is the SHA-256 of the admin key that requests must
	// present in Authorization.
	AdminKeyHash [sha256.Size]byte
	// Health reports whether the store answers; nil means always healthy.
	Health func(*http.Request) error
	Logger *slog.Logger
	// SignIn is the sign-in flow verify_credentials goes through, which
	// refuses guessing (guard.Policy); nil limits nothing. Give it the
	// console's and the portal's, so that guesses count once.
	SignIn *guard.SignIn
}

// Server is the API: NewServer, then Handler; Shutdown as the listener
// shuts down.
type Server struct {
	Config
	handler  http.Handler
	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
	patterns []string // every route registered, in ServeMux syntax
	openapi  []byte   // docs/openapi.yaml as JSON
}

// NewServer checks c and builds the API.
func NewServer(c Config) (*Server, error) {
	var missing []string
	for name, set := range map[string]bool{"Developers": c.Developers != nil, "Catalogue": c.Catalogue != nil,
		"Keys": c.Keys != nil, "Changes": c.Changes != nil, "Credentials": c.Credentials != nil, "Hits": c.Hits != nil,
		"Tokens": c.Tokens != nil, "TokenAdmin": c.TokenAdmin != nil} {
		if !set {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("rest: the server needs %s", strings.Join(missing, ", "))
	}
	if c.HitWriter == nil {
		c.HitWriter = c.Hits
	}
	if c.Revoker == nil {
		c.Revoker = keylens.LocalRevoker{Store: c.TokenAdmin}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	openapi, err := docs.OpenAPIJSON()
	if err != nil {
		return nil, err
	}
	s := &Server{Config: c, stop: make(chan struct{}), openapi: openapi}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the API with its middleware: panic recovery, request
// logging, admin authentication and enveloped 404/405 answers.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes are the patterns of every route the API registers (Go ServeMux
// syntax, such as "GET /api/portal/developers/{id}"); "/", the catch-all
// that answers 401, 404 and 405 in the envelope, is not one.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }

// Shutdown ends every long poll in flight (each answers what it has) and
// makes new ones answer at once, so that a graceful shutdown is not held up
// by sidecars following the change feed.
func (s *Server) Shutdown() {
	s.stopOnce.Do(func() { close(s.stop) })
}

func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	// handle registers a route and records its pattern: Routes lists them,
	// and a test checks them against docs/openapi.yaml.
	handle := func(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, h)
		s.patterns = append(s.patterns, pattern)
	}
	// Developers (developers.go).
	handle(api, "GET /api/portal/developers", s.listDevelopers)
	handle(api, "POST /api/portal/developers", s.createDeveloper)
	handle(api, "GET /api/portal/developers/{id}", s.getDeveloper)
	handle(api, "PUT /api/portal/developers/{id}", s.updateDeveloper)
	handle(api, "DELETE /api/portal/developers/{id}", s.deleteDeveloper)
	handle(api, "GET /api/portal/developers/{a}/{b}", s.getDeveloperPair) // email/{email}, {id}/usage
	handle(api, "POST /api/portal/developers/verify_credentials", s.verifyCredentials)
	// password/{id}, {id}/keys and {id}/subscriptions overlap: one dispatcher.
	handle(api, "POST /api/portal/developers/{a}/{b}", s.postDeveloperPair)

	// Developer keys, and the deprecated routes of the same (devkeys.go).
	handle(api, "PUT /api/portal/developers/{id}/keys/{keyId}", s.setKeyPolicies)
	handle(api, "POST /api/portal/developers/{id}/keys/{keyId}/reset_quota", func(w http.ResponseWriter, r *http.Request) {
		s.resetQuota(w, r, r.PathValue("id"), r.PathValue("keyId"))
	})
	// {id}/keys/{keyId} and oauth/{apiId}/{appId} overlap: one dispatcher.
	handle(api, "DELETE /api/portal/developers/{a}/{b}/{c}", s.deleteDeveloperTriple)
	handle(api, "GET /api/portal/developers/{devId}/{keyId}/{policyId}", s.setKeyPolicyDeprecated)
	handle(api, "DELETE /api/portal/developers/key/{apiId}/{keyId}/{devId}", func(w http.ResponseWriter, r *http.Request) {
		s.revokeKey(w, r, r.PathValue("devId"), r.PathValue("keyId"))
	})
	handle(api, "POST /api/portal/developers/key/{apiId}/{keyId}/{devId}/reset_quota", func(w http.ResponseWriter, r *http.Request) {
		s.resetQuota(w, r, r.PathValue("devId"), r.PathValue("keyId"))
	})
	handle(api, "DELETE /api/portal/developers/oauth/{appId}", func(w http.ResponseWriter, r *http.Request) {
		s.deleteOAuthClient(w, r, r.PathValue("appId"))
	})

	// OAuth client tokens (oauth.go): where the Tyk Classic Portal API puts them, and
	// beside the other portal routes.
	for _, prefix := range []string{"", "/api/portal"} {
		handle(api, "POST "+prefix+"/oauth-clients/{id}/revoke", s.revokeOAuthToken)
		handle(api, "POST "+prefix+"/oauth-clients/{id}/revoke_all", s.revokeAllOAuthTokens)
	}

	// Catalogue and configuration (catalogue.go).
	handle(api, "GET /api/portal/catalogue", s.getCatalogue)
	handle(api, "POST /api/portal/catalogue", s.putCatalogue)
	handle(api, "PUT /api/portal/catalogue", s.putCatalogue)
	handle(api, "GET /api/portal/configuration", s.getConfiguration)
	handle(api, "POST /api/portal/configuration", s.putConfiguration)
	handle(api, "PUT /api/portal/configuration", s.putConfiguration)

	// Key requests (keyrequests.go).
	handle(api, "GET /api/portal/requests", s.listKeyRequests)
	handle(api, "POST /api/portal/requests", s.createKeyRequest)
	handle(api, "GET /api/portal/requests/{id}", s.getKeyRequest)
	handle(api, "PUT /api/portal/requests/{id}", s.updateKeyRequest)
	handle(api, "UPDATE /api/portal/requests/{id}", s.updateKeyRequest) // the method Tyk's docs name
	handle(api, "DELETE /api/portal/requests/{id}", s.deleteKeyRequest)
	handle(api, "PUT /api/portal/requests/approve/{id}", s.approveKeyRequest)

	// Activity: Tyk's aggregate analytics (activity.go).
	handle(api, "GET /api/activity/keys/aggregate/{keys}/{fd}/{fm}/{fy}/{td}/{tm}/{ty}", s.aggregateKeys)
	handle(api, "GET /api/activity/keys/{key}/{fd}/{fm}/{fy}/{td}/{tm}/{ty}", s.keyActivity)

	// keylens's own: what a sidecar in another process needs (keylens.go).
	handle(api, "POST /api/keylens/hits", s.addHits)
	handle(api, "GET /api/keylens/changes", s.listChanges)
	handle(api, "GET /api/keylens/changes/last", s.lastChange)
	handle(api, "GET /api/keylens/credentials", s.findCredential)
	handle(api, "GET /api/keylens/credentials/{hash}", s.getCredential)
	handle(api, "POST /api/keylens/oauth/tokens", s.issueOAuthToken)
	handle(api, "POST /api/keylens/oauth/tokens/revoke", s.revokeClientToken)
	handle(api, "POST /api/keylens/developers/{id}/keys/{keyId}/rotate", s.rotateKey) // devkeys.go

	root := http.NewServeMux()
	handle(root, "GET /healthz", s.healthz)
	handle(root, "GET /api/openapi.json", s.openAPI)
	root.Handle("/", s.requireAdmin(enveloped(api)))
	return s.recoverer(s.logRequests(root))
}

// envelope is Tyk's response wrapper for messages and errors.
type envelope struct {
	Status  string `json:"Status"`
	Message string `json:"Message"`
	Meta    any    `json:"Meta"`
}

// list is Tyk's paged list shape.
type list[T any] struct {
	Data  []T `json:"Data"`
	Pages int `json:"Pages"`
}

// writeError answers err in the envelope. Only internal errors are logged:
// the rest are the client's, and their message says what went wrong.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if ClientGone(r, err) {
		s.Logger.Info("client closed the request", "method", r.Method, "route", r.Pattern, "status", StatusClientClosedRequest)
		writeJSON(w, StatusClientClosedRequest, envelope{Status: "Error", Message: "Client closed the request"})
		return
	}
	code := keylens.ErrorCode(err)
	switch code {
	case keylens.EINTERNAL:
		s.Logger.Error("request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	// EFULL is not logged per request: the store logs when it runs out of
	// space and when it has space again.
	status := HTTPStatus(code)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, envelope{Status: "Error", Message: keylens.ErrorMessage(err)})
}

// StatusClientClosedRequest is nginx's 499: the client went away (closed
// the connection, or its sending side) before the answer, and the work
// was cancelled. Not a failure of keylens.
const StatusClientClosedRequest = 499

// ClientGone reports whether err is the request's cancellation because
// its client went away: net/http cancels a request's context when its
// connection closes, a half-close included.
func ClientGone(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled)
}

func writeOK(w http.ResponseWriter, message string) {
	writeJSON(w, http.StatusOK, envelope{Status: "OK", Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"Status":"Error","Message":"Internal error","Meta":null}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// errMalformed is Tyk's answer to a body that does not parse.
var errMalformed = keylens.Errorf(keylens.EINVALID, "Request body malformed")

// errTooLarge answers 413; it is not a domain error, so it has its own path.
var errTooLarge = errors.New("request body too large")

// decode reads one JSON object from the body into v, strictly: a body that
// is not one well-formed JSON object (null included), holds invalid UTF-8,
// or has a top-level member v does not know is EINVALID naming what is
// wrong; a member of the wrong type says which; a body over MaxBodyBytes is
// errTooLarge. Members inside objects are v's to judge (the configuration
// keeps unknown ones, as Tyk's does).
func decode(w http.ResponseWriter, r *http.Request, v any, required ...string) error {
	return decodeLimit(w, r, v, MaxBodyBytes, required...)
}

// decodeLimit is decode for a body of at most limit bytes.
func decodeLimit(w http.ResponseWriter, r *http.Request, v any, limit int64, required ...string) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errTooLarge
	} else if err != nil {
		return errMalformed
	}
	if !utf8.Valid(body) {
		return keylens.Errorf(keylens.EINVALID, "Request body malformed: not valid UTF-8")
	}
	if err := checkMembers(body, v, required); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	err = dec.Decode(v)
	if err == nil {
		// Exactly one value: trailing garbage is as malformed as a
		// missing brace.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errMalformed
		}
	}
	var typeErr *json.UnmarshalTypeError
	var domainErr *keylens.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &domainErr):
		return err
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return keylens.Errorf(keylens.EINVALID, "Request body malformed: %s must be %s", typeErr.Field, jsonKind(typeErr))
	default:
		return errMalformed
	}
}

// checkMembers requires body to be a JSON object with every required
// member, and, unless v keeps members it does not know, no top-level
// member v's type does not name.
func checkMembers(body []byte, v any, required []string) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return errMalformed // not an object: null, an array, a string, garbage
	}
	if top == nil {
		return keylens.Errorf(keylens.EINVALID, "Request body malformed: a JSON object is required, not null")
	}
	for _, m := range required {
		if raw, ok := top[m]; !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return keylens.Errorf(keylens.EINVALID, "Request body malformed: %s is required", m)
		}
	}
	known := knownMembers(reflect.TypeOf(v))
	if known == nil {
		return nil
	}
	var unknown []string
	for m := range top {
		// encoding/json matches member names ignoring case, and so do
		// Tyk's clients ("Username" for "username"): so does this check.
		if !known[strings.ToLower(m)] {
			unknown = append(unknown, m)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return keylens.Errorf(keylens.EINVALID, "Request body malformed: unknown member %s", strings.Join(unknown, ", "))
	}
	return nil
}

// keepsMembers is implemented by bodies that keep every member a client
// sends (the portal configuration), so that none is unknown.
type keepsMembers interface{ KeepsUnknownMembers() }

// extraMembers is implemented by bodies whose UnmarshalJSON reads members
// beyond their fields' (legacy names such as "_id").
type extraMembers interface{ ExtraJSONMembers() []string }

var membersCache sync.Map // reflect.Type → map[string]bool (nil: any)

// knownMembers are the top-level member names a body of type t reads: its
// fields' JSON names, embedded structs' included, and its extra ones; nil
// when it keeps every member.
func knownMembers(t reflect.Type) map[string]bool {
	if m, ok := membersCache.Load(t); ok {
		return m.(map[string]bool)
	}
	var known map[string]bool
	if !t.Implements(reflect.TypeFor[keepsMembers]()) {
		known = map[string]bool{}
		st := t
		for st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		addFieldMembers(known, st)
		if t.Implements(reflect.TypeFor[extraMembers]()) {
			for _, m := range reflect.Zero(t).Interface().(extraMembers).ExtraJSONMembers() {
				known[strings.ToLower(m)] = true
			}
		}
	}
	membersCache.Store(t, known)
	return known
}

func addFieldMembers(known map[string]bool, t reflect.Type) {
	if t.Kind() != reflect.Struct {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case tag == "-":
		case f.Anonymous && name == "":
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			addFieldMembers(known, ft)
		case !f.IsExported():
		case name != "":
			known[strings.ToLower(name)] = true
		default:
			known[strings.ToLower(f.Name)] = true
		}
	}
}

func jsonKind(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "of another type"
	}
	switch k := e.Type.Kind().String(); k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	default:
		return "of type " + k
	}
}

// writeDecodeError answers an error from decode.
func (s *Server) writeDecodeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errTooLarge) {
		writeJSON(w, http.StatusRequestEntityTooLarge, envelope{Status: "Error",
			Message: fmt.Sprintf("Request body larger than %d bytes", MaxBodyBytes)})
		return
	}
	s.writeError(w, r, err)
}

// notAuthorised answers a missing or wrong admin key, as Tyk does.
const notAuthorised = "Not authorised"

// apiActor is who acts through the REST API: the admin key is its only
// credential.
var apiActor = keylens.Actor{Name: keylens.ActorAdminKey, Via: keylens.ViaAPI}

// requireAdmin lets through requests whose Authorization header carries the
// admin key, raw as Tyk Dashboard clients send it or after "Bearer ".
// The comparison is of SHA-256 digests in constant time.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("Authorization")) > 1 {
			// Not "the first wins": proxies and clients disagree on
			// which one that is.
			writeJSON(w, http.StatusBadRequest, envelope{Status: "Error", Message: "Send one Authorization header"})
			return
		}
		key := strings.TrimSpace(r.Header.Get("Authorization"))
		if len(key) > 7 && strings.EqualFold(key[:7], "bearer ") {
			key = strings.TrimSpace(key[7:])
		}
		sum := sha256.Sum256([]byte(key))
		if key == "" || subtle.ConstantTimeCompare(sum[:], s.AdminKeyHash[:]) != 1 {
			writeJSON(w, http.StatusUnauthorized, envelope{Status: "Error", Message: notAuthorised})
			return
		}
		// Every change the request makes is recorded as the admin key's.
		next.ServeHTTP(w, r.WithContext(keylens.WithActor(r.Context(), apiActor)))
	})
}

// enveloped answers in Tyk's envelope where the mux would answer its plain
// text 404 or 405.
func enveloped(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Let the mux's own error handler choose the status (and the
		// Allow header for 405), but not write the body.
		rec := &statusOnly{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		status := rec.status
		if status == 0 {
			status = http.StatusNotFound
		}
		msg := "Not found"
		if status == http.StatusMethodNotAllowed {
			msg = "Method not allowed"
		}
		writeJSON(w, status, envelope{Status: "Error", Message: msg})
	})
}

type statusOnly struct {
	header http.Header
	status int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

// openAPI serves docs/openapi.yaml as JSON. It needs no admin key: the
// description holds no secret, and tools fetch it without credentials.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(s.openapi)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.Health != nil {
		if err := s.Health(r); err != nil {
			s.Logger.Warn("health check failed", "err", err)
			body := map[string]string{"status": "unavailable"}
			if keylens.ErrorCode(err) == keylens.EFULL {
				body = map[string]string{"status": "degraded", "reason": keylens.ErrorMessage(err)}
			}
			writeJSON(w, http.StatusServiceUnavailable, body)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// recoverer turns a panic into a logged 500, so one bad request cannot take
// the process down.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Logger.Error("panic serving request", "method", r.Method, "route", r.Pattern, "panic", v)
				writeJSON(w, http.StatusInternalServerError, envelope{Status: "Error", Message: "Internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests logs each request by its route pattern, never its path or
// headers: paths can hold emails and key ids, headers the admin key.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.Logger.Debug("request", "method", r.Method, "route", route, "status", sw.status, "duration", time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
