// Package gatewayapi is not a Tyk package: it doubles the gateway's REST
// API (/tyk/) for keylens's end-to-end tests, from the gateway's documented
// and observed behaviour (keylens's docs/tyk-facts.md, "The Gateway
// API"). It holds no gateway code. What it models:
//
//   - every /tyk/ call needs X-Tyk-Authorization = the secret, else 403;
//   - POST /tyk/keys/{name} stores a session under the gateway's key of
//     (org_id, name) — the org prefix stripped from name first; with
//     hash_key_function set the base64 JSON form with that "h", else
//     org_id + name — names shorter than 3 refused; the answer's key is
//     that stored name, key_hash its hash (storage.HashStr, the real Tyk
//     hash) when hash_keys is on;
//   - GET, PUT and DELETE /tyk/keys/{x}: with ?hashed=<any non-empty value>
//     x is the hash; otherwise the key of (org, x) — org from the body on
//     PUT, from ?org_id= on GET and DELETE — then x as given; PUT replaces
//     the whole session (404 if absent); DELETE answers 404 "There is no
//     such key found" when absent;
//   - every policy a session names is looked up in the session's org: one
//     not found there fails the write with 500 (as a PUT without org_id
//     does live);
//   - a session with policies loses its own is_inactive (dropped when
//     written); zero-valued top-level members are omitted (Tyk 5.12);
//     access_rights come from the policies;
//   - quota counters (quota_remaining) reset to quota_max on every write
//     unless ?suppress_reset=1; POST /tyk/keys/policy/{hash} swaps only the
//     policies and keeps the rest;
//   - Basic passwords are hashed when stored (the gateway's
//     basic_auth_hash_key_function, modelled as sha256);
//   - GET /tyk/keys lists stored names (hashes with hash_keys), 404 when
//     hashed listing is disabled;
//   - OAuth clients: create (without api_id: on every OAuth API of the
//     policy), read, update (PUT /tyk/oauth/clients/{api}/{client}: the
//     redirect URI, policy, metadata and description; the id and secret
//     stay; the policy must grant the API) and delete per API (404 when
//     absent); revoke endpoints take form fields and refuse JSON;
//   - OAuth access tokens: the API's {listen_path}oauth/token issues them
//     for client credentials (HTTP Basic; the client needs a redirect URI),
//     stored like keys (listed by GET /tyk/keys) with oauth_client_id and
//     a copy of the client's meta_data; /tyk/oauth/revoke deletes one,
//     /tyk/oauth/revoke_all every token of the client, and only with the
//     client's secret (answering 200 either way); a token whose client is
//     gone is refused;
//   - policies: GET /tyk/policies lists the loaded ones (the configured
//     file's and those written through the API); POST /tyk/policies, PUT
//     and DELETE /tyk/policies/{id} write policy files, refused with 500
//     when policy_source is "service" (a Dashboard's policies); what is
//     written takes effect at GET /tyk/reload/group, not before;
//   - GET /hello answers without the secret, as the gateway's health check;
//   - GET /tyk/apis lists the configured APIs.
//
// State (keys, clients, written policy files) is written to a file after
// every change, as a gateway's Redis and policy_path keep it across a
// restart. /double/ endpoints (no secret) let tests see what Tyk itself
// would not show: the request log with arrival times, and an
// authentication check as the gateway's auth middleware makes it; and make
// the gateway slow (/double/delay).
package gatewayapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/TykTechnologies/tyk/storage"
)

// Config is the gateway's configuration and its policies and APIs.
type Config struct {
	Secret                  string `json:"secret"`
	HashKeys                bool   `json:"hash_keys"`
	HashKeyFunction         string `json:"hash_key_function"`
	EnableHashedKeysListing bool   `json:"enable_hashed_keys_listing"`
	// PolicySource "service" means the policies come from a Dashboard:
	// the policy API refuses writes.
	PolicySource string `json:"policy_source"`
	// Policies are the policies file's.
	Policies []Policy `json:"policies"`
	APIs     []API    `json:"apis"`
}

// Policy is a policy of the gateway.
type Policy struct {
	ID           string         `json:"id"`
	Name         string         `json:"name,omitempty"`
	OrgID        string         `json:"org_id"`
	IsInactive   bool           `json:"is_inactive"`
	QuotaMax     int64          `json:"quota_max"`
	AccessRights map[string]any `json:"access_rights"`
}

// API is an API definition of the gateway.
type API struct {
	APIID     string `json:"api_id"`
	OrgID     string `json:"org_id"`
	UseOAuth2 bool   `json:"use_oauth2"`
	// ListenPath, "/<api id>/" when empty, serves the API's oauth/token.
	ListenPath string `json:"listen_path,omitempty"`
}

func (a API) listenPath() string {
	if a.ListenPath != "" {
		return a.ListenPath
	}
	return "/" + a.APIID + "/"
}

// Logged is one request the double received.
type Logged struct {
	At     time.Time `json:"at"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Query  string    `json:"query"`
	Status int       `json:"status"`
	// Form is the form a revocation sent (the endpoints that take one).
	Form string `json:"form,omitempty"`
}

// state is what the gateway's Redis holds.
type state struct {
	// Keys maps a stored name's storage key (its hash with hash_keys, else
	// the name) to the session.
	Keys    map[string]map[string]any `json:"keys"`
	Names   map[string]string         `json:"names"`   // storage key → stored name
	Clients map[string]map[string]any `json:"clients"` // api id + "/" + client id → client
	// PolicyFiles are the policies written through the API, by id.
	PolicyFiles map[string]Policy `json:"policy_files"`
}

// Gateway is the double. Its handler is safe for concurrent use.
type Gateway struct {
	cfg  Config
	file string

	mu     sync.Mutex
	st     state
	loaded []Policy // in effect: the file's and the written ones, as of the last (re)load
	log    []Logged
	// delays slow requests whose path starts with a prefix.
	delays   map[string]time.Duration
	inflight int // requests being delayed
}

// New returns a gateway with cfg, keeping its state in file (loaded when it
// exists; "" keeps it in memory only).
func New(cfg Config, file string) (*Gateway, error) {
	g := &Gateway{cfg: cfg, file: file, st: state{Keys: map[string]map[string]any{}, Names: map[string]string{},
		Clients: map[string]map[string]any{}, PolicyFiles: map[string]Policy{}}, delays: map[string]time.Duration{}}
	if file != "" {
		if b, err := os.ReadFile(file); err == nil {
			if err := json.Unmarshal(b, &g.st); err != nil {
				return nil, fmt.Errorf("state %s: %w", file, err)
			}
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	if g.st.PolicyFiles == nil {
		g.st.PolicyFiles = map[string]Policy{}
	}
	g.reload()
	return g, nil
}

// reload puts the policies file's and the written policies in effect.
func (g *Gateway) reload() {
	g.loaded = slices.Clone(g.cfg.Policies)
	ids := make([]string, 0, len(g.st.PolicyFiles))
	for id := range g.st.PolicyFiles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := g.st.PolicyFiles[id]
		if i := slices.IndexFunc(g.loaded, func(l Policy) bool { return l.ID == id }); i >= 0 {
			g.loaded[i] = p
		} else {
			g.loaded = append(g.loaded, p)
		}
	}
}

func (g *Gateway) save() {
	if g.file == "" {
		return
	}
	b, _ := json.Marshal(g.st)
	tmp := g.file + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, g.file)
	}
}

type answer struct {
	status int
	body   any
}

func apiError(status int, msg string) answer {
	return answer{status, map[string]string{"status": "error", "message": msg}}
}

// ServeHTTP routes one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	g.delay(r.URL.Path)
	var a answer
	if strings.HasPrefix(r.URL.Path, "/double/") {
		a = g.doubleRoute(r)
	} else if r.URL.Path == "/hello" {
		a = answer{http.StatusOK, map[string]string{"status": "pass", "version": "double", "description": "Tyk GW"}}
	} else if api := g.tokenEndpoint(r.URL.Path); api != nil {
		g.mu.Lock()
		a = g.issueToken(*api, r)
		g.mu.Unlock()
	} else if r.Header.Get("X-Tyk-Authorization") != g.cfg.Secret {
		a = apiError(http.StatusForbidden, "Attempted administrative access with invalid or missing key!")
	} else {
		g.mu.Lock()
		a = g.route(r)
		g.mu.Unlock()
	}
	g.mu.Lock()
	g.log = append(g.log, Logged{At: at, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: a.status, Form: r.PostForm.Encode()})
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

func (g *Gateway) route(r *http.Request) answer {
	p := r.URL.Path
	switch {
	case p == "/tyk/keys" && r.Method == http.MethodGet:
		return g.listKeys()
	case strings.HasPrefix(p, "/tyk/keys/policy/") && r.Method == http.MethodPost:
		return g.setPolicies(strings.TrimPrefix(p, "/tyk/keys/policy/"), r)
	case strings.HasPrefix(p, "/tyk/keys/"):
		name := strings.TrimPrefix(p, "/tyk/keys/")
		switch r.Method {
		case http.MethodPost:
			return g.createKey(name, r)
		case http.MethodGet:
			return g.getKey(name, r)
		case http.MethodPut:
			return g.putKey(name, r)
		case http.MethodDelete:
			return g.deleteKey(name, r)
		}
	case p == "/tyk/policies" && r.Method == http.MethodGet:
		return answer{http.StatusOK, g.loaded}
	case p == "/tyk/policies" && r.Method == http.MethodPost:
		return g.writePolicy("", r)
	case strings.HasPrefix(p, "/tyk/policies/"):
		id := strings.TrimPrefix(p, "/tyk/policies/")
		switch r.Method {
		case http.MethodGet:
			if i := slices.IndexFunc(g.loaded, func(l Policy) bool { return l.ID == id }); i >= 0 {
				return answer{http.StatusOK, g.loaded[i]}
			}
			return apiError(http.StatusNotFound, "Policy not found")
		case http.MethodPut, http.MethodDelete:
			return g.writePolicy(id, r)
		}
	case (p == "/tyk/reload/group" || p == "/tyk/reload" || p == "/tyk/reload/") && r.Method == http.MethodGet:
		g.reload()
		return answer{http.StatusOK, map[string]string{"status": "ok", "message": ""}}
	case p == "/tyk/apis" && r.Method == http.MethodGet:
		return answer{http.StatusOK, g.cfg.APIs}
	case p == "/tyk/oauth/clients/create" && r.Method == http.MethodPost:
		return g.createClient(r)
	case strings.HasPrefix(p, "/tyk/oauth/clients/"):
		parts := strings.Split(strings.TrimPrefix(p, "/tyk/oauth/clients/"), "/")
		if len(parts) != 2 {
			return apiError(http.StatusBadRequest, "malformed request")
		}
		switch r.Method {
		case http.MethodGet:
			c, ok := g.st.Clients[parts[0]+"/"+parts[1]]
			if !ok {
				return apiError(http.StatusNotFound, "OAuth Client ID not found")
			}
			return answer{http.StatusOK, clientAnswer(c)}
		case http.MethodPut:
			return g.updateClient(parts[0], parts[1], r)
		case http.MethodDelete:
			return g.deleteClient(parts[0], parts[1])
		}
	case (p == "/tyk/oauth/revoke" || p == "/tyk/oauth/revoke_all") && r.Method == http.MethodPost:
		if err := r.ParseForm(); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			return apiError(http.StatusBadRequest, "cannot parse form")
		}
		if p == "/tyk/oauth/revoke" {
			if sk := g.storageKey(r.PostForm.Get("token")); str(g.st.Keys[sk], "oauth_client_id") == r.PostForm.Get("client_id") {
				delete(g.st.Keys, sk)
				delete(g.st.Names, sk)
				g.save()
			}
			return answer{http.StatusOK, map[string]string{"status": "ok", "message": "token revoked successfully"}}
		}
		g.revokeAll(r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"))
		return answer{http.StatusOK, map[string]string{"status": "ok", "message": "tokens revoked successfully"}}
	}
	return apiError(http.StatusNotFound, "Not found")
}

// storageKey is where a stored name lives: its hash with hash_keys on.
func (g *Gateway) storageKey(name string) string {
	if g.cfg.HashKeys {
		return storage.HashStr(name)
	}
	return name
}

// storedName is the gateway's key of (org, name).
func (g *Gateway) storedName(org, name string) string {
	if org != "" {
		name = strings.TrimPrefix(name, org)
	}
	return storage.GenerateToken(org, name, g.cfg.HashKeyFunction)
}

// find returns the storage key of x: the hash itself when hashed, else the
// key of (org, x), then x as given.
func (g *Gateway) find(x, org string, hashed bool) (string, bool) {
	if hashed {
		_, ok := g.st.Keys[x]
		return x, ok
	}
	for _, name := range []string{g.storedName(org, x), x} {
		if _, ok := g.st.Keys[g.storageKey(name)]; ok {
			return g.storageKey(name), true
		}
	}
	return "", false
}

func readSession(r *http.Request) (map[string]any, error) {
	var s map[string]any
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if s == nil {
		s = map[string]any{}
	}
	return s, nil
}

func str(s map[string]any, k string) string { v, _ := s[k].(string); return v }

// num reads a JSON number as decoded here (json.Number) or from the state
// file (float64); 0 for anything else.
func num(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	}
	return 0
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// policy is loaded policy id of org; nil when there is none.
func (g *Gateway) policy(org, id string) *Policy {
	for i := range g.loaded {
		if p := &g.loaded[i]; p.ID == id && p.OrgID == org {
			return p
		}
	}
	return nil
}

// writePolicy creates (id "": POST), replaces (PUT) or deletes a policy
// file; it takes effect at the next reload.
func (g *Gateway) writePolicy(id string, r *http.Request) answer {
	if g.cfg.PolicySource == "service" {
		return apiError(http.StatusInternalServerError, "Due to enabled service policy source, please use the Dashboard API")
	}
	if r.Method == http.MethodDelete {
		if _, ok := g.st.PolicyFiles[id]; !ok {
			return apiError(http.StatusNotFound, "Delete failed")
		}
		delete(g.st.PolicyFiles, id)
		g.save()
		return answer{http.StatusOK, map[string]string{"key": id, "status": "ok", "action": "deleted"}}
	}
	var p Policy
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil {
		return apiError(http.StatusBadRequest, "Request malformed")
	}
	action := "added"
	if id != "" {
		p.ID, action = id, "modified"
	} else if p.ID == "" {
		p.ID = fmt.Sprintf("%x", sha256.Sum256([]byte(time.Now().String())))[:24]
	}
	g.st.PolicyFiles[p.ID] = p
	g.save()
	return answer{http.StatusOK, map[string]string{"key": p.ID, "status": "ok", "action": action}}
}

// prepare applies the policies (in the session's org), drops a key's own
// is_inactive when policies apply, hashes a new Basic password, resets
// the quota unless suppressed, and omits zero-valued members.
func (g *Gateway) prepare(s, old map[string]any, resetQuota bool) *answer {
	org := str(s, "org_id")
	pols := strList(s["apply_policies"])
	rights := map[string]any{}
	var quota int64
	for _, id := range pols {
		p := g.policy(org, id)
		if p == nil {
			a := apiError(http.StatusInternalServerError, "Failed to apply policy "+id+": policy not found")
			return &a
		}
		for k, v := range p.AccessRights {
			rights[k] = v
		}
		quota = max(quota, p.QuotaMax)
	}
	if len(pols) > 0 {
		s["access_rights"] = rights
		s["quota_max"] = quota
		delete(s, "is_inactive")
	}
	if ba, ok := s["basic_auth_data"].(map[string]any); ok {
		if pw := str(ba, "password"); pw != "" && str(ba, "hash_type") == "" {
			sum := sha256.Sum256([]byte(pw))
			s["basic_auth_data"] = map[string]any{"password": hex.EncodeToString(sum[:]), "hash_type": "sha256"}
		}
	}
	if resetQuota || old == nil {
		s["quota_remaining"] = s["quota_max"]
	} else if _, ok := s["quota_remaining"]; !ok {
		s["quota_remaining"] = old["quota_remaining"]
	}
	for k, v := range s {
		switch v {
		case nil, false, "", json.Number("0"), 0, int64(0), float64(0):
			delete(s, k)
		}
	}
	return nil
}

func (g *Gateway) createKey(name string, r *http.Request) answer {
	s, err := readSession(r)
	if err != nil {
		return apiError(http.StatusBadRequest, "Request malformed")
	}
	if len(name) < 3 {
		return apiError(http.StatusBadRequest, "Failed to create key - Key name is too short")
	}
	stored := g.storedName(str(s, "org_id"), name)
	if a := g.prepare(s, nil, true); a != nil {
		return *a
	}
	sk := g.storageKey(stored)
	g.st.Keys[sk], g.st.Names[sk] = s, stored
	g.save()
	ans := map[string]string{"key": stored, "status": "ok", "action": "added"}
	if g.cfg.HashKeys {
		ans["key_hash"] = sk
	}
	return answer{http.StatusOK, ans}
}

func (g *Gateway) getKey(x string, r *http.Request) answer {
	sk, ok := g.find(x, r.URL.Query().Get("org_id"), r.URL.Query().Get("hashed") != "")
	if !ok {
		return apiError(http.StatusNotFound, "Key not found")
	}
	return answer{http.StatusOK, g.st.Keys[sk]}
}

func (g *Gateway) putKey(x string, r *http.Request) answer {
	s, err := readSession(r)
	if err != nil {
		return apiError(http.StatusBadRequest, "Request malformed")
	}
	sk, ok := g.find(x, str(s, "org_id"), r.URL.Query().Get("hashed") != "")
	if !ok {
		return apiError(http.StatusNotFound, "Key is not found")
	}
	if a := g.prepare(s, g.st.Keys[sk], r.URL.Query().Get("suppress_reset") != "1"); a != nil {
		return *a
	}
	g.st.Keys[sk] = s
	g.save()
	return answer{http.StatusOK, map[string]string{"key": x, "status": "ok", "action": "modified"}}
}

func (g *Gateway) deleteKey(x string, r *http.Request) answer {
	sk, ok := g.find(x, r.URL.Query().Get("org_id"), r.URL.Query().Get("hashed") != "")
	if !ok {
		return apiError(http.StatusNotFound, "There is no such key found")
	}
	delete(g.st.Keys, sk)
	delete(g.st.Names, sk)
	g.save()
	return answer{http.StatusOK, map[string]string{"key": x, "status": "ok", "action": "deleted"}}
}

func (g *Gateway) setPolicies(hash string, r *http.Request) answer {
	body, err := readSession(r)
	if err != nil {
		return apiError(http.StatusBadRequest, "Request malformed")
	}
	cur, ok := g.st.Keys[hash]
	if !ok {
		return apiError(http.StatusNotFound, "Key not found")
	}
	s := make(map[string]any, len(cur))
	for k, v := range cur {
		s[k] = v
	}
	s["apply_policies"] = body["apply_policies"]
	if a := g.prepare(s, cur, false); a != nil {
		return *a
	}
	g.st.Keys[hash] = s
	g.save()
	return answer{http.StatusOK, map[string]string{"key": hash, "status": "ok", "action": "updated"}}
}

func (g *Gateway) listKeys() answer {
	if g.cfg.HashKeys && !g.cfg.EnableHashedKeysListing {
		return apiError(http.StatusNotFound, "Hashed key listing is disabled in config (enable_hashed_keys_listing)")
	}
	keys := []string{}
	for sk := range g.st.Keys {
		keys = append(keys, sk)
	}
	sort.Strings(keys)
	return answer{http.StatusOK, map[string][]string{"keys": keys}}
}

func (g *Gateway) createClient(r *http.Request) answer {
	c, err := readSession(r)
	if err != nil {
		return apiError(http.StatusBadRequest, "Unmarshalling failed")
	}
	if str(c, "client_id") == "" {
		c["client_id"] = fmt.Sprintf("%x", sha256.Sum256([]byte(time.Now().String())))[:32]
	}
	if str(c, "secret") == "" {
		c["secret"] = base64.StdEncoding.EncodeToString([]byte(time.Now().String()))
	}
	var apis []string
	if id := str(c, "api_id"); id != "" {
		apis = []string{id}
	} else {
		var org string
		for _, p := range g.loaded {
			if p.ID == str(c, "policy_id") {
				org = p.OrgID
			}
		}
		p := g.policy(org, str(c, "policy_id"))
		if p == nil {
			return apiError(http.StatusBadRequest, "Policy access rights doesn't contain API this OAuth client belongs to")
		}
		for _, api := range g.cfg.APIs {
			if _, ok := p.AccessRights[api.APIID]; ok && api.UseOAuth2 {
				apis = append(apis, api.APIID)
			}
		}
		if len(apis) == 0 {
			return apiError(http.StatusBadRequest, "No OAuth APIs in the policy")
		}
	}
	for _, api := range apis {
		g.st.Clients[api+"/"+str(c, "client_id")] = c
	}
	g.save()
	return answer{http.StatusOK, clientAnswer(c)}
}

func clientAnswer(c map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"client_id", "secret", "redirect_uri", "policy_id", "meta_data", "description"} {
		out[k] = c[k]
	}
	return out
}

// updateClient rewrites client's redirect URI, policy, metadata and
// description on api; its id and secret stay.
func (g *Gateway) updateClient(api, client string, r *http.Request) answer {
	cur, ok := g.st.Clients[api+"/"+client]
	if !ok {
		return apiError(http.StatusNotFound, "OAuth Client ID not found")
	}
	in, err := readSession(r)
	if err != nil {
		return apiError(http.StatusBadRequest, "Unmarshalling failed")
	}
	var org string
	for _, a := range g.cfg.APIs {
		if a.APIID == api {
			org = a.OrgID
		}
	}
	if p := g.policy(org, str(in, "policy_id")); p == nil || p.AccessRights[api] == nil {
		return apiError(http.StatusBadRequest, "Policy access rights doesn't contain API this OAuth client belongs to")
	}
	c := map[string]any{"client_id": cur["client_id"], "secret": cur["secret"], "api_id": cur["api_id"],
		"redirect_uri": in["redirect_uri"], "policy_id": in["policy_id"], "meta_data": in["meta_data"], "description": in["description"]}
	g.st.Clients[api+"/"+client] = c
	g.save()
	return answer{http.StatusOK, clientAnswer(c)}
}

// revokeAll deletes every token of client, when secret is the client's.
func (g *Gateway) revokeAll(client, secret string) {
	known := false
	for k, c := range g.st.Clients {
		if strings.HasSuffix(k, "/"+client) && str(c, "secret") == secret {
			known = true
		}
	}
	if !known {
		return // Tyk answers 200 all the same
	}
	for sk, s := range g.st.Keys {
		if str(s, "oauth_client_id") == client {
			delete(g.st.Keys, sk)
			delete(g.st.Names, sk)
		}
	}
	g.save()
}

// tokenEndpoint is the OAuth API whose {listen_path}oauth/token path is.
func (g *Gateway) tokenEndpoint(path string) *API {
	for i, a := range g.cfg.APIs {
		if a.UseOAuth2 && path == a.listenPath()+"oauth/token" {
			return &g.cfg.APIs[i]
		}
	}
	return nil
}

// issueToken answers a client-credentials grant: a token stored like a
// key, with the client's policy and a copy of its metadata.
func (g *Gateway) issueToken(api API, r *http.Request) answer {
	id, secret, ok := r.BasicAuth()
	c := g.st.Clients[api.APIID+"/"+id]
	if err := r.ParseForm(); err != nil || !ok || c == nil || str(c, "secret") != secret || r.PostForm.Get("grant_type") != "client_credentials" {
		return answer{http.StatusUnauthorized, map[string]string{"error": "invalid_client"}}
	}
	if str(c, "redirect_uri") == "" {
		return answer{http.StatusForbidden, map[string]string{"error": "unauthorized_client"}}
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := storage.GenerateToken(api.OrgID, hex.EncodeToString(b), g.cfg.HashKeyFunction)
	meta := map[string]any{}
	if m, ok := c["meta_data"].(map[string]any); ok {
		maps.Copy(meta, m)
	}
	s := map[string]any{"org_id": api.OrgID, "apply_policies": []any{str(c, "policy_id")}, "oauth_client_id": id,
		"meta_data": meta, "expires": time.Now().Add(time.Hour).Unix()}
	if a := g.prepare(s, nil, true); a != nil {
		return *a
	}
	sk := g.storageKey(token)
	g.st.Keys[sk], g.st.Names[sk] = s, token
	g.save()
	return answer{http.StatusOK, map[string]any{"access_token": token, "token_type": "bearer", "expires_in": 3600}}
}

// delay sleeps as /double/delay asked for requests to path.
func (g *Gateway) delay(path string) {
	g.mu.Lock()
	var d time.Duration
	for prefix, pd := range g.delays {
		if strings.HasPrefix(path, prefix) {
			d = pd
		}
	}
	if d > 0 {
		g.inflight++
	}
	g.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
		g.mu.Lock()
		g.inflight--
		g.mu.Unlock()
	}
}

func (g *Gateway) deleteClient(api, client string) answer {
	if _, ok := g.st.Clients[api+"/"+client]; !ok {
		return apiError(http.StatusNotFound, "OAuth Client ID not found")
	}
	delete(g.st.Clients, api+"/"+client)
	g.save()
	return answer{http.StatusOK, map[string]string{"key": client, "status": "ok", "action": "deleted"}}
}

// ---- test-only views ----

func (g *Gateway) doubleRoute(r *http.Request) answer {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch r.URL.Path {
	case "/double/log":
		return answer{http.StatusOK, slices.Clone(g.log)}
	case "/double/state":
		return answer{http.StatusOK, g.st}
	case "/double/authenticate":
		return g.authenticate(r)
	case "/double/delay": // ?prefix=/tyk/keys/&d=3s; d=0 ends it
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			return apiError(http.StatusBadRequest, err.Error())
		}
		g.delays[r.URL.Query().Get("prefix")] = d
		return answer{http.StatusOK, map[string]string{"status": "ok"}}
	case "/double/inflight":
		return answer{http.StatusOK, map[string]int{"inflight": g.inflight}}
	}
	return apiError(http.StatusNotFound, "Not found")
}

// authenticate checks a request's credential as the gateway's auth
// middleware for API ?api_id= does: an auth token in Authorization, Basic
// credentials (the stored name of (the API's org, username)), or a JWT
// (HS256 here) whose kid names a key with jwt_data.secret. A key's session
// must grant the API; a key with policies is inactive only if one of its
// policies is (its own is_inactive is ignored), one without by its own
// flag; an expired key is refused. It answers the session's alias and
// metadata.
func (g *Gateway) authenticate(r *http.Request) answer {
	var api *API
	for i := range g.cfg.APIs {
		if g.cfg.APIs[i].APIID == r.URL.Query().Get("api_id") {
			api = &g.cfg.APIs[i]
		}
	}
	if api == nil {
		return apiError(http.StatusNotFound, "no such API")
	}
	auth := r.Header.Get("Authorization")
	var name string
	var s map[string]any
	if user, pw, ok := r.BasicAuth(); ok {
		name = g.storedName(api.OrgID, user)
		s = g.st.Keys[g.storageKey(name)]
		ba, _ := s["basic_auth_data"].(map[string]any)
		sum := sha256.Sum256([]byte(pw))
		if s == nil || str(ba, "password") != hex.EncodeToString(sum[:]) {
			return apiError(http.StatusUnauthorized, "User not authorised")
		}
	} else if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && strings.Count(tok, ".") == 2 {
		parts := strings.Split(tok, ".")
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		var hdr struct{ Alg, Kid string }
		_ = json.Unmarshal(hb, &hdr)
		s = g.st.Keys[g.storageKey(hdr.Kid)]
		jd, _ := s["jwt_data"].(map[string]any)
		mac := hmac.New(sha256.New, []byte(str(jd, "secret")))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		if s == nil || hdr.Alg != "HS256" || !hmac.Equal(sig, mac.Sum(nil)) {
			return apiError(http.StatusForbidden, "Key not authorized")
		}
	} else if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && api.UseOAuth2 {
		s = g.st.Keys[g.storageKey(tok)]
		if s == nil {
			return apiError(http.StatusForbidden, "Key not authorised")
		}
		if g.st.Clients[api.APIID+"/"+str(s, "oauth_client_id")] == nil {
			return apiError(http.StatusForbidden, "Key not authorised: OAuth client access was revoked")
		}
	} else {
		s = g.st.Keys[g.storageKey(auth)]
		if s == nil {
			return apiError(http.StatusForbidden, "Access to this API has been disallowed")
		}
	}
	// A key whose expires (Unix seconds, 0 never) has passed is kept but
	// refused, as the gateway's key-expiry check does.
	if exp := num(s["expires"]); exp > 0 && time.Now().After(time.Unix(exp, 0)) {
		return apiError(http.StatusUnauthorized, "Key has expired, please renew")
	}
	inactive, _ := s["is_inactive"].(bool)
	pols := strList(s["apply_policies"])
	if len(pols) > 0 {
		inactive = false
		for _, id := range pols {
			if p := g.policy(str(s, "org_id"), id); p != nil && p.IsInactive {
				inactive = true
			}
		}
	}
	if inactive {
		return apiError(http.StatusForbidden, "Key is inactive, please renew")
	}
	rights, _ := s["access_rights"].(map[string]any)
	if _, ok := rights[api.APIID]; !ok {
		return apiError(http.StatusForbidden, "Access to this API has been disallowed")
	}
	return answer{http.StatusOK, map[string]any{"alias": s["alias"], "meta_data": s["meta_data"], "apply_policies": pols}}
}
