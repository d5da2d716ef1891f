package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/TykTechnologies/tyk/apidef"

	"github.com/keylens/keylens/identity"
)

// settings are one API's plugin settings: its definition's
// config_data.keylens object, with environment fallbacks.
type settings struct {
	SidecarURL       string
	HitsSecret       string
	CacheSize        int
	CacheTTL         time.Duration
	NegativeCacheTTL time.Duration
	Timeout          time.Duration
	FlushInterval    time.Duration
	MaxSeries        int
	InjectHeaders    bool
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
	s.HitsSecret = getenv("KEYLENS_HITS_SECRET")
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
	str("hits_secret", &s.HitsSecret)
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
	logOnce sync.Once
	// Which request hook stamps the start of a request for the latency
	// KeylensHits ships (latency.go): the API's first keylens hook, and
	// only when its response chain has KeylensHits.
	stampAuth, stampPostAuth bool
}

var (
	states   sync.Map // *apidef.APIDefinition → *apiState; a reload brings new definitions
	statesMu sync.Mutex
	nstates  int
	shared   = map[settings]*apiState{}
)

// lastState remembers the latest definition looked up: consecutive
// requests mostly go to the same API.
var lastState atomic.Pointer[defState]

type defState struct {
	def *apidef.APIDefinition
	st  *apiState
}

// stateFor returns the state of def, building it on first use. Lookups
// take no lock.
func stateFor(def *apidef.APIDefinition) *apiState {
	if ls := lastState.Load(); ls != nil && ls.def == def {
		return ls.st
	}
	if st, ok := states.Load(def); ok {
		lastState.Store(&defState{def, st.(*apiState)})
		return st.(*apiState)
	}
	statesMu.Lock()
	defer statesMu.Unlock()
	if st, ok := states.Load(def); ok {
		return st.(*apiState)
	}
	if nstates++; nstates > 10000 { // definitions of past reloads
		states.Range(func(k, _ any) bool { states.Delete(k); return true })
		nstates = 1
	}
	var cfg map[string]interface{}
	if def != nil {
		cfg = def.ConfigData
	}
	s, err := parseSettings(cfg, os.Getenv)
	st := &apiState{s: s, err: err}
	if def != nil {
		st.apiID = def.APIID
		mw := &def.CustomMiddleware
		for _, h := range mw.Response {
			st.stampAuth = st.stampAuth || h.Name == "KeylensHits"
		}
		st.stampPostAuth = st.stampAuth && mw.AuthCheck.Name != "KeylensAuth"
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
