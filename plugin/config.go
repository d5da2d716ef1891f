package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/apidef/oas"
	"github.com/TykTechnologies/tyk/ctx"

	"github.com/keylens/keylens/identity"
)

// settings are one API's plugin settings: its definition's
// config_data.keylens object, with environment fallbacks.
type settings struct {
	SidecarURL string
	// HitsAndChangesSecret is hits_secret: the sidecar's --hits-secret,
	// sent with hits and when following the change feed.
	HitsAndChangesSecret string
	CacheSize            int
	CacheTTL             time.Duration
	NegativeCacheTTL     time.Duration
	Timeout              time.Duration
	FlushInterval        time.Duration
	MaxSeries            int
	InjectHeaders        bool
	// MaxHeaderBytes bounds the identity headers of a request, as the
	// sidecar's --max-identity-header-bytes does (one implementation:
	// identity.HeadersWithin).
	MaxHeaderBytes int
	// PersistSession asks the gateway to write KeylensAuth's sessions to
	// Redis (one write a request); off by default. Rate limits and quotas
	// need no persisted session.
	PersistSession bool
	// RequireAssertion accepts an identity only with a valid signed
	// assertion of it (the sidecar's --assertions).
	RequireAssertion bool
	// SidecarDown is what KeylensPostAuth does when it cannot ask the
	// sidecar: "pass" (the gateway authenticated the key; no identity
	// headers) or "refuse" (503). KeylensAuth always refuses.
	SidecarDown string
	Headers     identity.HeaderNames
}

func defaultSettings(getenv func(string) string) settings {
	s := settings{
		SidecarURL: "http://127.0.0.1:8181", CacheSize: 10000, CacheTTL: 10 * time.Second,
		NegativeCacheTTL: time.Second, Timeout: 2 * time.Second, FlushInterval: time.Second,
		MaxSeries: 100000, InjectHeaders: true, SidecarDown: sidecarDownPass, Headers: identity.DefaultHeaderNames,
		MaxHeaderBytes: identity.DefaultMaxHeaderBytes,
	}
	if v := getenv("KEYLENS_SIDECAR_URL"); v != "" {
		s.SidecarURL = v
	}
	s.HitsAndChangesSecret = getenv("KEYLENS_HITS_SECRET")
	return s
}

// parseSettings reads config_data.keylens over the defaults. Every problem
// is reported, joined.
func parseSettings(configData map[string]interface{}, getenv func(string) string) (settings, error) {
	s := defaultSettings(getenv)
	raw, ok := configData["keylens"]
	if !ok {
		return s, nil
	}
	m, ok := raw.(map[string]interface{})
	if !ok {
		return s, errors.New("config_data.keylens must be an object")
	}
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := m[name]; ok {
			if sv, ok := v.(string); ok {
				*dst = sv
			} else {
				errs = append(errs, fmt.Errorf("%s must be a string", name))
			}
		}
	}
	boolean := func(name string, dst *bool) {
		if v, ok := m[name]; ok {
			if bv, ok := v.(bool); ok {
				*dst = bv
			} else {
				errs = append(errs, fmt.Errorf("%s must be true or false", name))
			}
		}
	}
	integer := func(name string, dst *int) {
		if v, ok := m[name]; ok {
			if f, ok := v.(float64); ok && f >= 1 && f <= 1e9 && f == float64(int(f)) {
				*dst = int(f)
			} else {
				errs = append(errs, fmt.Errorf("%s must be a whole number from 1", name))
			}
		}
	}
	duration := func(name string, dst *time.Duration) {
		if v, ok := m[name]; ok {
			sv, _ := v.(string)
			d, err := time.ParseDuration(sv)
			if err != nil || d <= 0 || d > time.Hour {
				errs = append(errs, fmt.Errorf("%s must be a duration such as \"1s\" (up to 1h)", name))
				return
			}
			*dst = d
		}
	}
	str("sidecar_url", &s.SidecarURL)
	str("hits_secret", &s.HitsAndChangesSecret)
	integer("cache_size", &s.CacheSize)
	integer("max_series", &s.MaxSeries)
	integer("max_header_bytes", &s.MaxHeaderBytes)
	duration("cache_ttl", &s.CacheTTL)
	duration("negative_cache_ttl", &s.NegativeCacheTTL)
	duration("timeout", &s.Timeout)
	duration("flush_interval", &s.FlushInterval)
	boolean("inject_headers", &s.InjectHeaders)
	boolean("persist_session", &s.PersistSession)
	boolean("assertions", &s.RequireAssertion)
	str("sidecar_down", &s.SidecarDown)
	if s.SidecarDown != sidecarDownPass && s.SidecarDown != sidecarDownRefuse {
		errs = append(errs, fmt.Errorf("sidecar_down must be %q or %q", sidecarDownPass, sidecarDownRefuse))
	}
	if v, ok := m["headers"]; ok {
		hm, ok := v.(map[string]interface{})
		if !ok {
			errs = append(errs, errors.New("headers must be an object"))
		}
		for name, dst := range map[string]*string{
			"developer_id": &s.Headers.DeveloperID, "email": &s.Headers.Email, "key_id": &s.Headers.KeyID,
			"policies": &s.Headers.Policies, "field_prefix": &s.Headers.FieldPrefix,
			"key_request_field_prefix": &s.Headers.KeyRequestFieldPrefix, "assertion": &s.Headers.Assertion,
			"fields_truncated": &s.Headers.Truncated,
		} {
			if hv, ok := hm[name]; ok {
				sv, ok := hv.(string)
				if !ok || (sv != "" && identity.HeaderToken(sv) != strings.Trim(sv, "-")) {
					errs = append(errs, fmt.Errorf("headers.%s must be a header name", name))
					continue
				}
				*dst = sv
			}
		}
	}
	for name := range m {
		if !knownSettings[name] {
			errs = append(errs, fmt.Errorf("unknown setting %q", name))
		}
	}
	if u, err := url.Parse(s.SidecarURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("sidecar_url %q is not an http:// URL", s.SidecarURL))
	}
	return s, errors.Join(errs...)
}

var knownSettings = map[string]bool{
	"sidecar_url": true, "hits_secret": true, "cache_size": true, "max_series": true, "cache_ttl": true,
	"negative_cache_ttl": true, "timeout": true, "flush_interval": true, "inject_headers": true,
	"persist_session": true, "headers": true, "assertions": true, "sidecar_down": true, "max_header_bytes": true,
}

// What KeylensPostAuth does when the sidecar cannot be asked.
const (
	sidecarDownPass   = "pass"
	sidecarDownRefuse = "refuse"
)

// apiState is what one API definition's requests use: its settings, and
// the resolver and hit shipper shared by every API with the same sidecar
// settings.
type apiState struct {
	s       settings
	err     error // a misconfiguration: requests are refused
	res     *resolver
	hits    *shipper
	apiID   string
	orgID   string // the API's org, which KeylensAuth's sessions carry
	from    string // where the settings are in the definition, for the log
	logOnce sync.Once
	last    *defState // the state as lastState holds it, made once
	// Which request hook stamps the start of a request for the latency
	// KeylensHits ships (latency.go; describe says which): known from a
	// classic definition, learnt from hitsHook for an OAS one.
	stampAuth, stampPostAuth bool
	learnStamps              bool
	// hitsHook is set once KeylensHits has run for the API (by API id,
	// whichever definition it was handed).
	hitsHook *atomic.Bool
}

// stampsAuth reports whether KeylensAuth stamps its requests.
func (st *apiState) stampsAuth() bool {
	return st.stampAuth || st.learnStamps && st.hitsHook.Load()
}

// stampsPostAuth reports whether KeylensPostAuth stamps its requests.
func (st *apiState) stampsPostAuth() bool {
	return st.stampPostAuth || st.learnStamps && st.hitsHook.Load()
}

// sawHitsHook records that KeylensHits runs for the API.
func (st *apiState) sawHitsHook() {
	if !st.hitsHook.Load() {
		st.hitsHook.Store(true)
	}
}

var (
	states   sync.Map // API definition (defKey) → *apiState; a reload brings new definitions
	statesMu sync.Mutex
	nstates  int
	shared   = map[settings]*apiState{}
	hitsHook = map[string]*atomic.Bool{} // API id → apiState.hitsHook
)

// A defKey is the definition of the API serving a request, as the gateway
// put it in the request's context before calling a hook: a classic API's
// *apidef.APIDefinition, or an OAS API's *oas.OAS. The gateway keeps one
// per API until a reload, so the pointer identifies the API's state.
type defKey = any

// noDefinition stands for a request with neither definition.
var noDefinition *apidef.APIDefinition

// stateOf returns the state of the API serving r. It reads the
// definition's pointer from the context and never modifies it: the
// gateway's ctx.GetDefinition and ctx.GetOASDefinition would return a
// deep copy made by reflection on every call (tens of microseconds in a
// real gateway), and a new pointer each time, which stateFor would take
// for a new API. A classic API's definition is looked for first: most APIs
// are classic, and an OAS API's response hooks before Tyk 5.11 get the
// classic definition the gateway extracted from its OAS one.
func stateOf(r *http.Request) *apiState {
	c := r.Context()
	if def, ok := c.Value(ctx.Definition).(*apidef.APIDefinition); ok && def != nil {
		return stateFor(def)
	}
	if o, ok := c.Value(ctx.OASDefinition).(*oas.OAS); ok && o != nil {
		return stateFor(o)
	}
	return stateFor(noDefinition)
}

// lastState remembers the latest definition looked up: consecutive
// requests mostly go to the same API.
var lastState atomic.Pointer[defState]

type defState struct {
	def defKey
	st  *apiState
}

// stateFor returns the state of def, building it on first use. Lookups
// take no lock.
func stateFor(def defKey) *apiState {
	if ls := lastState.Load(); ls != nil && ls.def == def {
		return ls.st
	}
	if st, ok := states.Load(def); ok {
		lastState.Store(st.(*apiState).last)
		return st.(*apiState)
	}
	statesMu.Lock()
	defer statesMu.Unlock()
	if st, ok := states.Load(def); ok {
		return st.(*apiState)
	}
	if nstates++; nstates > 10000 { // definitions of past reloads
		states.Range(func(k, _ any) bool { states.Delete(k); return true })
		clear(hitsHook)
		nstates = 1
	}
	a := describe(def)
	s, err := parseSettings(a.configData, os.Getenv)
	st := &apiState{s: s, err: err, apiID: a.apiID, orgID: a.orgID, from: a.from,
		stampAuth: a.stampAuth, stampPostAuth: a.stampPostAuth, learnStamps: a.learnStamps}
	st.last = &defState{def, st}
	if st.hitsHook = hitsHook[a.apiID]; st.hitsHook == nil {
		st.hitsHook = new(atomic.Bool)
		hitsHook[a.apiID] = st.hitsHook
	}
	if err == nil {
		if sh, ok := shared[s]; ok {
			st.res, st.hits = sh.res, sh.hits
		} else {
			st.res = newResolver(s)
			st.hits = newShipper(s)
			shared[s] = st
		}
	}
	states.Store(def, st)
	return st
}

// definition is what the plugin reads of an API's definition, of either
// kind.
type definition struct {
	apiID, orgID string
	configData   map[string]interface{}
	from         string // where configData.keylens is, for the log
	// Which request hook stamps a request's start (latency.go), or
	// whether that is learnt.
	stampAuth, stampPostAuth, learnStamps bool
}

// describe reads an API definition of either kind.
//
// A classic definition names its hooks, so the first keylens request
// hook stamps, and only when the response chain has KeylensHits.
//
// An OAS definition carries the same in its x-tyk-api-gateway extension:
// the API id and org in info, the classic config_data as
// middleware.global.pluginConfig.data.value (read whether or not its
// enabled flag is set, as a classic definition's config_data is). Its
// hook lists are not read: their shape changed across Tyk releases (a
// single deprecated plugin object became a list), and reading a member a
// release lacks would keep the plugin from compiling for it. So on an OAS
// API the stamping is learnt: once KeylensHits has run for the API (its
// first requests are counted without a latency), whichever keylens
// request hook runs stamps. An API without KeylensHits never stamps, and
// leaves the stamp table to the APIs that read it. The extension is read
// only here, on an API's first request, and never written: the gateway has
// already converted it when it loaded the API.
func describe(def defKey) definition {
	switch d := def.(type) {
	case *apidef.APIDefinition:
		if d == nil {
			return definition{from: "config_data.keylens"}
		}
		a := definition{apiID: d.APIID, orgID: d.OrgID, configData: d.ConfigData, from: "config_data.keylens"}
		mw := &d.CustomMiddleware
		for _, h := range mw.Response {
			a.stampAuth = a.stampAuth || h.Name == "KeylensHits"
		}
		a.stampPostAuth = a.stampAuth && mw.AuthCheck.Name != "KeylensAuth"
		return a
	case *oas.OAS:
		a := definition{learnStamps: true, from: oas.ExtensionTykAPIGateway + ".middleware.global.pluginConfig.data.value.keylens"}
		x := d.GetTykExtension()
		if x == nil {
			return a
		}
		a.apiID, a.orgID = x.Info.ID, x.Info.OrgID
		if mw := x.Middleware; mw != nil && mw.Global != nil && mw.Global.PluginConfig != nil && mw.Global.PluginConfig.Data != nil {
			a.configData = mw.Global.PluginConfig.Data.Value
		}
		return a
	}
	return definition{}
}
