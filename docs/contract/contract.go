// Package contract checks HTTP exchanges with keylens against its
// description, docs/openapi.yaml, with kin-openapi: tests route their
// requests through a Transport (or call Check), so that an undocumented
// route, status, member or shape fails them. Only tests import it.
package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/keylens/keylens/docs"
)

// The listeners, as the description's servers name them in
// x-keylens-listener.
const (
	Admin   = "admin"
	Sidecar = "sidecar"
)

// Operation is one operation of the description.
type Operation struct {
	Listener string
	Method   string // as OpenAPI names it, upper case
	Path     string // the path template, e.g. /api/portal/developers/{id}
	// AlsoMethods are methods OpenAPI 3.1 cannot name that serve the
	// same operation (x-keylens-also-methods), such as Tyk's UPDATE.
	AlsoMethods []string
}

// Sample is a request path for the operation: each parameter replaced
// by "x".
func (o Operation) Sample() string {
	var b strings.Builder
	rest := o.Path
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		j := strings.IndexByte(rest[i:], '}')
		b.WriteString(rest[:i])
		b.WriteString("x")
		rest = rest[i+j+1:]
	}
}

// Checker validates exchanges against the description.
type Checker struct {
	doc        *openapi3.T
	ops        []Operation
	routers    map[string]routers.Router
	errSchemas map[string]*openapi3.Schema // what an unrouted request is answered with

	validated atomic.Int64
	mu        sync.Mutex
	exercised map[string]bool // "LISTENER METHOD PATH"
}

var (
	loadOnce sync.Once
	loaded   *Checker
	loadErr  error
)

// Load returns the checker of docs/openapi.yaml, loaded and validated
// once per process.
func Load() (*Checker, error) {
	loadOnce.Do(func() { loaded, loadErr = load() })
	return loaded, loadErr
}

func load() (*Checker, error) {
	ctx := context.Background()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml: %w", err)
	}
	c := &Checker{doc: doc, routers: map[string]routers.Router{}, exercised: map[string]bool{},
		errSchemas: map[string]*openapi3.Schema{}}
	// One router per listener, over a copy of the description holding
	// that listener's paths with the servers removed: tests run on ports
	// the kernel picks, and /healthz is on both listeners.
	byListener := map[string]*openapi3.Paths{}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		servers := doc.Servers
		if len(item.Servers) > 0 {
			servers = item.Servers
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("docs/openapi.yaml: %s has no server", path)
		}
		for _, s := range servers {
			l, _ := s.Extensions["x-keylens-listener"].(string)
			if l != Admin && l != Sidecar {
				return nil, fmt.Errorf("docs/openapi.yaml: a server of %s names no listener (x-keylens-listener)", path)
			}
			if byListener[l] == nil {
				byListener[l] = openapi3.NewPaths()
			}
			copied := *item
			copied.Servers = nil
			byListener[l].Set(path, &copied)
			for method, op := range item.Operations() {
				o := Operation{Listener: l, Method: method, Path: path}
				if also, ok := op.Extensions["x-keylens-also-methods"].([]any); ok {
					for _, m := range also {
						o.AlsoMethods = append(o.AlsoMethods, fmt.Sprint(m))
					}
				}
				c.ops = append(c.ops, o)
			}
		}
	}
	for l, paths := range byListener {
		part := *doc
		part.Servers = nil
		part.Paths = paths
		r, err := gorillamux.NewRouter(&part)
		if err != nil {
			return nil, fmt.Errorf("docs/openapi.yaml, %s listener: %w", l, err)
		}
		c.routers[l] = r
	}
	for l, name := range map[string]string{Admin: "ErrorEnvelope", Sidecar: "SidecarError"} {
		ref := doc.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			return nil, fmt.Errorf("docs/openapi.yaml: no schema %s", name)
		}
		c.errSchemas[l] = ref.Value
	}
	slices.SortFunc(c.ops, func(a, b Operation) int {
		return strings.Compare(a.Listener+" "+a.Path+" "+a.Method, b.Listener+" "+b.Path+" "+b.Method)
	})
	return c, nil
}

// Operations are the description's operations on listener.
func (c *Checker) Operations(listener string) []Operation {
	var out []Operation
	for _, o := range c.ops {
		if o.Listener == listener {
			out = append(out, o)
		}
	}
	return out
}

// Covers reports whether the description covers path on listener: the
// admin console under /admin/ is HTML for browsers, not part of the API.
func (c *Checker) Covers(listener, path string) bool {
	return !(listener == Admin && (path == "/admin" || strings.HasPrefix(path, "/admin/")))
}

// Validated is how many exchanges Check has validated.
func (c *Checker) Validated() int64 { return c.validated.Load() }

// Exercised is how many of the description's operations (counted per
// listener) the validated exchanges used, of how many, and the unused.
func (c *Checker) Exercised() (used, total int, unused []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.ops {
		if k := o.Listener + " " + o.Method + " " + o.Path; c.exercised[k] {
			used++
		} else {
			unused = append(unused, k)
		}
	}
	return used, len(c.ops), unused
}

var standardMethods = []string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}

// Check validates one exchange on listener: the request (whose body is
// reqBody) and the response. A request the description refuses must have
// been refused (4xx); every response must be one the description allows:
// a documented status with a body of the documented shape, or, for a
// request no operation serves, the listener's 401, 404 or 405 error.
func (c *Checker) Check(listener string, req *http.Request, reqBody []byte, status int, header http.Header, resBody []byte) error {
	if !c.Covers(listener, req.URL.Path) {
		return nil
	}
	router := c.routers[listener]
	if router == nil {
		return fmt.Errorf("contract: no operation on the %s listener", listener)
	}
	c.validated.Add(1)
	what := fmt.Sprintf("%s %s on the %s listener, answered %d", req.Method, req.URL.Path, listener, status)

	rr := req.Clone(context.Background())
	rr.Body = io.NopCloser(bytes.NewReader(reqBody))
	if rr.Header.Get("Content-Type") == "" && len(reqBody) > 0 {
		// The admin API and /hits read JSON whatever the header says;
		// /introspect refuses a body that does not say it is a form.
		rr.Header.Set("Content-Type", "application/json")
	}
	// OpenAPI path parameters hold one segment; /auth/{path} holds the
	// rest of the path, slashes included, as Envoy sends it.
	if rest, ok := strings.CutPrefix(rr.URL.Path, "/auth/"); ok && listener == Sidecar {
		u := *rr.URL
		u.RawPath = "/auth/" + url.PathEscape(rest)
		rr.URL = &u
	}
	also := ""
	if !slices.Contains(standardMethods, rr.Method) {
		// A method OpenAPI cannot name: route it as the operation that
		// lists it in x-keylens-also-methods.
		for _, o := range c.Operations(listener) {
			if slices.Contains(o.AlsoMethods, rr.Method) {
				also, rr.Method = rr.Method, o.Method
				break
			}
		}
	}
	route, params, err := router.FindRoute(rr)
	if errors.Is(err, routers.ErrMethodNotAllowed) && listener == Admin && rr.Method == http.MethodHead {
		// Every GET of the admin listener answers HEAD too, without
		// content (the description says so): check it as the GET.
		get := rr.Clone(context.Background())
		get.Method = http.MethodGet
		get.Body = rr.Body
		if route, params, err = router.FindRoute(get); err == nil {
			route.Method = http.MethodHead
		}
	}
	if err == nil && also != "" && !slices.Contains(c.opOf(listener, route).AlsoMethods, also) {
		err = routers.ErrMethodNotAllowed
	}
	if err != nil {
		return c.checkUnrouted(listener, what, err, status, resBody)
	}
	c.mu.Lock()
	c.exercised[listener+" "+route.Method+" "+route.Path] = true
	c.mu.Unlock()

	if fixed, ok := membersAsNamed(route.Operation, reqBody); ok {
		rr.Body = io.NopCloser(bytes.NewReader(fixed))
	}
	in := &openapi3filter.RequestValidationInput{Request: rr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: presented, MultiError: true}}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)

	var problems []string
	if reqErr != nil && (status < 400 || status > 499) {
		problems = append(problems, "the description refuses the request, yet it was not refused with a 4xx: "+oneLine(reqErr))
	}
	resIn := in
	if req.Method == http.MethodHead {
		// kin-openapi checks nothing of an answer to HEAD: check its
		// status and headers as the GET's, without content.
		get := *in
		get.Request = rr.Clone(context.Background())
		get.Request.Method = http.MethodGet
		resIn = &get
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: resIn, Status: status, Header: header,
		Body: io.NopCloser(bytes.NewReader(resBody)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			ExcludeResponseBody: req.Method == http.MethodHead}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		problems = append(problems, "the response is not one the description allows: "+oneLine(err))
	}
	if len(problems) > 0 {
		return fmt.Errorf("contract: %s (%s %s): %s; body %s", what, route.Method, route.Path, strings.Join(problems, "; "), clip(resBody))
	}
	return nil
}

// membersAsNamed respells the top-level members of a JSON object body as
// the operation's schema names them, ignoring case: keylens's decoder
// matches member names ignoring case, as Tyk's does, and the description
// says so. ok is false when there is nothing to respell.
func membersAsNamed(op *openapi3.Operation, body []byte) ([]byte, bool) {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil, false
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
		return nil, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil {
		return nil, false
	}
	changed := false
	for name := range mt.Schema.Value.Properties {
		for m, v := range top {
			if m != name && strings.EqualFold(m, name) {
				if _, taken := top[name]; !taken {
					delete(top, m)
					top[name] = v
					changed = true
				}
			}
		}
	}
	if !changed {
		return nil, false
	}
	out, err := json.Marshal(top)
	return out, err == nil
}

// presented checks that a request presents the credential a security
// scheme names; whether it is the right one is keylens's to answer (401).
func presented(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	h := in.RequestValidationInput.Request.Header
	switch {
	case s.Type == "apiKey" && s.In == "header":
		if h.Get(s.Name) == "" {
			return fmt.Errorf("no %s header", s.Name)
		}
	case s.Type == "http":
		scheme, _, _ := strings.Cut(h.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, s.Scheme) {
			return fmt.Errorf("no %s credentials", s.Scheme)
		}
	default:
		return fmt.Errorf("security scheme %s %s: not checked here", s.Type, s.In)
	}
	return nil
}

func (c *Checker) opOf(listener string, route *routers.Route) Operation {
	for _, o := range c.ops {
		if o.Listener == listener && o.Path == route.Path && o.Method == route.Method {
			return o
		}
	}
	return Operation{}
}

// checkUnrouted checks the answer to a request no operation serves.
func (c *Checker) checkUnrouted(listener, what string, routeErr error, status int, body []byte) error {
	allowed := []int{http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest}
	if listener == Admin {
		allowed = append(allowed, http.StatusUnauthorized) // the admin key is checked first
	} else {
		allowed = append(allowed, http.StatusRequestHeaderFieldsTooLarge)
	}
	if !slices.Contains(allowed, status) {
		return fmt.Errorf("contract: %s: no operation of the description serves it (%v), yet it was not answered %v", what, routeErr, allowed)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("contract: %s: the error is not JSON: %s", what, clip(body))
	}
	if err := c.errSchemas[listener].VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("contract: %s: the error is not the %s listener's shape: %s", what, listener, oneLine(err))
	}
	return nil
}

func oneLine(err error) string {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		parts := make([]string, len(me))
		for i, e := range me {
			parts[i] = oneLine(e)
		}
		return strings.Join(parts, " | ")
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

func clip(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// Transport is an http.RoundTripper that checks every exchange with a
// keylens listener it knows against the description, and passes any
// other (a proxy in front of keylens, a gateway) through unchecked.
type Transport struct {
	Checker *Checker
	Base    http.RoundTripper // nil: http.DefaultTransport
	// Report receives every failed check, with the request's context.
	Report func(ctx context.Context, err error)

	mu        sync.Mutex
	listeners map[string]string // host:port → listener
}

// Register makes base (http://host:port) a listener's, whose exchanges
// are checked from now on.
func (t *Transport) Register(listener, base string) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		panic(fmt.Sprintf("contract: Register(%q, %q): not a base URL", listener, base))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.listeners == nil {
		t.listeners = map[string]string{}
	}
	t.listeners[u.Host] = listener
}

// Unregister forgets the listener at base: once it is gone, its port may
// serve something else (a test's nginx), whose exchanges are not keylens's.
func (t *Transport) Unregister(base string) {
	u, err := url.Parse(base)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.listeners, u.Host)
}

// RoundTrip sends req, then checks the exchange, reading the response's
// body and handing the caller an identical copy.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	t.mu.Lock()
	listener := t.listeners[req.URL.Host]
	t.mu.Unlock()
	if listener == "" || !t.Checker.Covers(listener, req.URL.Path) {
		return base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	res, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resBody, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	if err := t.Checker.Check(listener, req, reqBody, res.StatusCode, res.Header, resBody); err != nil && t.Report != nil {
		t.Report(req.Context(), err)
	}
	return res, nil
}
