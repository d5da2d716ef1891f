package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/apidef/oas"
	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/gateway"
	"github.com/TykTechnologies/tyk/storage"
	"github.com/TykTechnologies/tyk/user"
)

// authAs is a custom auth hook that accepts any request and sets s (a copy
// per request), persisting it when persist is set.
func authAs(s user.SessionState, persist bool) func(http.ResponseWriter, *http.Request) {
	return func(_ http.ResponseWriter, r *http.Request) {
		c := s.Clone()
		ctx.SetSession(r, &c, persist)
	}
}

func get(key string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if key != "" {
		r.Header.Set("Authorization", key)
	}
	return r
}

// A persisted session is stored under the hash of its KeyID and then
// authenticates that very string at a plain auth-token API of the gateway,
// until it expires.
func TestPersistedSessionLogsInByItsKeyID(t *testing.T) {
	g := gateway.New()
	g.AddPolicy(gateway.Policy{ID: "p", OrgID: "org"})
	def := &apidef.APIDefinition{APIID: "a", OrgID: "org"}
	custom := &gateway.API{Def: def, Auth: authAs(user.SessionState{KeyID: "the-hash", OrgID: "org", ApplyPolicies: []string{"p"}}, true)}
	plain := &gateway.API{Def: &apidef.APIDefinition{APIID: "b", OrgID: "org"}}

	if res := g.Do(t, plain, get("the-hash")); res.Code != 403 {
		t.Fatalf("before any request: %s", res.Describe())
	}
	if res := g.Do(t, custom, get("anything")); res.Code != 200 || g.Redis.Writes() != 1 {
		t.Fatalf("custom auth: %s, %d writes", res.Describe(), g.Redis.Writes())
	}
	if _, ok := g.Redis.Session(storage.HashStr("the-hash")); !ok {
		t.Fatalf("not stored under the hash of KeyID: %v", g.Redis.Keys())
	}
	if res := g.Do(t, plain, get("the-hash")); res.Code != 200 || res.Session.KeyID != "the-hash" {
		t.Fatalf("the KeyID does not log in: %s", res.Describe())
	}
	if res := g.Do(t, plain, get("Bearer the-hash")); res.Code != 200 {
		t.Fatalf("Bearer form: %s", res.Describe())
	}

	// Not persisted: nothing stored, nothing logs in.
	g2 := gateway.New()
	g2.AddPolicy(gateway.Policy{ID: "p", OrgID: "org"})
	custom.Auth = authAs(user.SessionState{KeyID: "other", OrgID: "org", ApplyPolicies: []string{"p"}}, false)
	g2.Do(t, custom, get("x"))
	if g2.Redis.Writes() != 0 || g2.Do(t, plain, get("other")).Code != 403 {
		t.Fatal("a session not persisted was stored")
	}

	// An empty KeyID takes the auth token.
	s := &user.SessionState{}
	r := gateway.Request(get(""), def, "token-1", nil)
	ctx.SetSession(r, s, false)
	if s.KeyID != "token-1" || s.KeyHash() != storage.HashStr("token-1") || ctx.GetAuthToken(r) != "token-1" {
		t.Fatalf("SetSession: KeyID %q, hash %q, token %q", s.KeyID, s.KeyHash(), ctx.GetAuthToken(r))
	}
}

// An expired or inactive persisted session authenticates nobody; a
// session's lifetime removes it from Redis.
func TestExpiredSessionsAreRefused(t *testing.T) {
	g := gateway.New()
	g.AddPolicy(gateway.Policy{ID: "p", OrgID: "org"})
	g.AddPolicy(gateway.Policy{ID: "off", OrgID: "org", IsInactive: true})
	plain := &gateway.API{Def: &apidef.APIDefinition{APIID: "b", OrgID: "org"}}
	for key, s := range map[string]user.SessionState{
		"expired":  {KeyID: "expired", OrgID: "org", ApplyPolicies: []string{"p"}, Expires: time.Now().Add(-2 * time.Second).Unix()},
		"inactive": {KeyID: "inactive", OrgID: "org", ApplyPolicies: []string{"off"}},
		"gone":     {KeyID: "gone", OrgID: "org", ApplyPolicies: []string{"p"}, SessionLifetime: 1},
	} {
		custom := &gateway.API{Def: &apidef.APIDefinition{APIID: "a", OrgID: "org"}, Auth: authAs(s, true)}
		res := g.Do(t, custom, get("x"))
		if key == "gone" && res.Code != 200 {
			t.Fatalf("%s: %s", key, res.Describe())
		}
	}
	for key, want := range map[string]int{"expired": 401, "inactive": 403} {
		if res := g.Do(t, plain, get(key)); res.Code != want {
			t.Errorf("%s: %s, want %d", key, res.Describe(), want)
		}
	}
	if _, ok := g.Redis.Session(storage.HashStr("gone")); !ok {
		t.Fatal("a session with a lifetime was not stored")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, ok := g.Redis.Session(storage.HashStr("gone")); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a session with a 1 s lifetime outlived it")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Policies are looked up in the session's org: elsewhere, the gateway
// answers 200 with an empty body and no upstream call, which Do reports.
func TestPolicyOutsideTheSessionsOrg(t *testing.T) {
	g := gateway.New()
	g.AddPolicy(gateway.Policy{ID: "p", OrgID: "gateway-org"})
	api := func(org string) *gateway.API {
		return &gateway.API{Def: &apidef.APIDefinition{APIID: "a", OrgID: "gateway-org"},
			Auth: authAs(user.SessionState{KeyID: "k", OrgID: org, ApplyPolicies: []string{"p"}}, false)}
	}
	if res := g.Do(t, api("gateway-org"), get("k")); res.Code != 200 || res.Upstream == nil {
		t.Fatalf("policy in the session's org: %s", res.Describe())
	}
	ft := &fakeT{TB: t}
	res := g.Do(ft, api("another-org"), get("k"))
	if res.Code != 200 || res.Body != "" || res.Upstream != nil || !ft.failed {
		t.Fatalf("policy elsewhere: %s, reported as a failure: %v", res.Describe(), ft.failed)
	}
}

// A quota counts by the hash of KeyID and makes the gateway write the
// session after every request.
func TestQuotaPersistsTheSession(t *testing.T) {
	g := gateway.New()
	g.AddPolicy(gateway.Policy{ID: "q", OrgID: "org", QuotaMax: 1000})
	custom := &gateway.API{Def: &apidef.APIDefinition{APIID: "a", OrgID: "org"},
		Auth: authAs(user.SessionState{KeyID: "k", OrgID: "org", ApplyPolicies: []string{"q"}}, false)}
	for range 3 {
		g.Do(t, custom, get("x"))
	}
	if g.Redis.Writes() != 3 {
		t.Fatalf("%d session writes for 3 requests under a quota, want 3", g.Redis.Writes())
	}
}

// GetDefinition returns a deep copy, counted; the pointer is in the
// context under Definition.
func TestGetDefinitionClones(t *testing.T) {
	def := &apidef.APIDefinition{APIID: "a", ConfigData: map[string]interface{}{"keylens": map[string]interface{}{"x": "y"}},
		CustomMiddleware: apidef.MiddlewareSection{Response: []apidef.MiddlewareDefinition{{Name: "H"}}}}
	r := gateway.Request(get(""), def, "", nil)
	before := gateway.DefinitionClones()
	c := ctx.GetDefinition(r)
	if c == def || c.APIID != "a" || gateway.DefinitionClones() != before+1 {
		t.Fatalf("GetDefinition: same pointer %v, clones %d", c == def, gateway.DefinitionClones()-before)
	}
	c.ConfigData["keylens"].(map[string]interface{})["x"] = "changed"
	c.CustomMiddleware.Response[0].Name = "changed"
	if def.ConfigData["keylens"].(map[string]interface{})["x"] != "y" || def.CustomMiddleware.Response[0].Name != "H" {
		t.Fatal("the copy shares memory with the definition")
	}
	if r.Context().Value(ctx.Definition) != def {
		t.Fatal("the definition pointer is not under ctx.Definition")
	}
}

type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Helper()               {}

// An OAS API is loaded as the gateway loads it: the extension converted
// once, its settings in the classic definition extracted from it; and
// ctx.GetOASDefinition hands out a counted deep copy, as GetDefinition does.
func TestOASAPILoadsAndCopies(t *testing.T) {
	a, err := gateway.OASAPI([]byte(`{"openapi":"3.0.3","x-tyk-api-gateway":{"info":{"id":"api-1","orgId":"org-1","name":"One","state":{"active":true}},
		"middleware":{"global":{"pluginConfig":{"driver":"goplugin","data":{"enabled":true,"value":{"k":"v"}}}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, converted := a.OAS.Extensions["x-tyk-api-gateway"].(*oas.XTykAPIGateway); !converted {
		t.Errorf("the extension is still %T after loading", a.OAS.Extensions["x-tyk-api-gateway"])
	}
	if a.Def.APIID != "api-1" || a.Def.OrgID != "org-1" || a.Def.ConfigData["k"] != "v" {
		t.Errorf("classic definition %+v", a.Def)
	}
	r := gateway.RequestOAS(httptest.NewRequest("GET", "/", nil), a.OAS, "", nil)
	before := gateway.DefinitionClones()
	c := ctx.GetOASDefinition(r)
	if c == nil || c == a.OAS || c.GetTykExtension().Info.ID != "api-1" || gateway.DefinitionClones() != before+1 {
		t.Errorf("GetOASDefinition: %p (the original %p), %d copies counted", c, a.OAS, gateway.DefinitionClones()-before)
	}
	if ctx.GetDefinition(r) != nil {
		t.Error("an OAS API's request carries a classic definition")
	}
}
