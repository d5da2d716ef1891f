package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/gateway"
	"github.com/TykTechnologies/tyk/user"
)

// oasAPI is an API defined in Tyk's OAS format, loaded as the gateway
// loads it, whose plugin config data points the plugin at the test
// sidecar. Its API id and org differ from the classic test API's.
func oasAPI(t testing.TB, apiID string) *gateway.API {
	t.Helper()
	doc := `{"openapi":"3.0.3","info":{"title":"Payments","version":"1"},"paths":{},
	  "x-tyk-api-gateway":{
	    "info":{"id":"` + apiID + `","orgId":"org-oas","name":"Payments","state":{"active":true}},
	    "upstream":{"url":"http://payments.internal/"},
	    "server":{"listenPath":{"value":"/payments/","strip":true}},
	    "middleware":{"global":{"pluginConfig":{"driver":"goplugin","data":{"enabled":true,"value":
	      {"keylens":{"sidecar_url":"` + kl.sidecar + `","cache_ttl":"100ms","negative_cache_ttl":"100ms","flush_interval":"50ms"}}}}}}}}`
	a, err := gateway.OASAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOASAPIs: on an API defined in Tyk's OAS format the gateway hands the
// hooks its *oas.OAS (ctx.OASDefinition), not a classic definition. The
// plugin reads its settings, API id and org from the OAS extension: the
// key resolves through the configured sidecar (the default address has
// none), the session carries the API's org, and the hits are stored under
// the API's id with the requests' latency, whichever definition the
// gateway hands the response hook (the classic one before Tyk 5.11, the
// OAS one after). No definition is deep-copied.
func TestOASAPIs(t *testing.T) {
	for _, v511 := range []bool{false, true} {
		t.Run(fmt.Sprintf("OAS in response hooks %v", v511), func(t *testing.T) {
			_, raw := newKey(t, fmt.Sprintf("oas-%v@example.com", v511))
			apiID := fmt.Sprintf("api-oas-%v", v511)
			a := oasAPI(t, apiID)
			a.Auth, a.Response = KeylensAuth, []func(http.ResponseWriter, *http.Response, *http.Request){KeylensHits}
			const upstreamTime = 30 * time.Millisecond
			a.Upstream = func(w http.ResponseWriter, r *http.Request) { time.Sleep(upstreamTime) }
			g := gateway.New()
			g.OASInResponseHooks = v511
			g.AddPolicy(gateway.Policy{ID: "pol-pay", OrgID: "org-oas"})
			before := gateway.DefinitionClones()
			var keyHash string
			do := func() {
				res := g.Do(t, a, keyRequest(raw))
				if res.Code != 200 || res.Upstream == nil || res.Session.OrgID != "org-oas" || res.Upstream.Header.Get("X-Developer-Email") == "" {
					t.Fatalf("%s; session %+v", res.Describe(), res.Session)
				}
				keyHash = res.Upstream.Header.Get("X-Key-Id")
			}
			today := time.Now().UTC().Format("2/1/2006")
			var got struct {
				Data []struct {
					Hits        int64
					RequestTime float64 `json:"request_time"`
				}
			}
			hits := func(n int64) func() bool {
				return func() bool {
					admin(t, "GET", "/api/activity/keys/aggregate/"+keyHash+"/"+today+"/"+today+"?api_id="+apiID, "", &got)
					return len(got.Data) == 1 && got.Data[0].Hits == n
				}
			}
			// The first request is counted without a latency: the
			// plugin learns from it that the API has KeylensHits.
			do()
			waitFor(t, "the OAS API's first hit in the aggregate", hits(1))
			for range 3 {
				do()
			}
			waitFor(t, "the OAS API's hits in the aggregate", hits(4))
			if rt := got.Data[0].RequestTime; rt < float64(upstreamTime/time.Millisecond) {
				t.Errorf("request_time %v ms, want at least the upstream's %v", rt, upstreamTime)
			}
			if n := gateway.DefinitionClones() - before; n != 0 {
				t.Errorf("the hooks deep-copied the definition %d times", n)
			}
		})
	}
}

// TestOASStampsOnlyForKeylensHits: on an OAS API the plugin cannot read
// which hooks are configured, so it stamps a request's start only once
// KeylensHits has run for the API; an API without it leaves the stamp
// table alone.
func TestOASStampsOnlyForKeylensHits(t *testing.T) {
	_, raw := newKey(t, "oas-stamp@example.com")
	a := oasAPI(t, "api-oas-stamp")
	auth := func() *http.Request {
		r := gateway.RequestOAS(keyRequest(raw), a.OAS, "", nil)
		if rec, next := gateway.RunHook(KeylensAuth, r); !next {
			t.Fatalf("refused: %d %s", rec.Code, rec.Body)
		}
		return r
	}
	for range 3 {
		if _, _, _, ok := claimStamp(auth()); ok {
			t.Fatal("a request of an API without KeylensHits was stamped")
		}
	}
	r := auth()
	KeylensHits(httptest.NewRecorder(), &http.Response{StatusCode: 200}, r)
	if _, _, _, ok := claimStamp(auth()); !ok {
		t.Error("after KeylensHits ran for the API, its requests are not stamped")
	}
}

// TestOASMisconfiguration: wrong settings in an OAS API's plugin config
// data refuse its requests, and the log says where they are.
func TestOASMisconfiguration(t *testing.T) {
	_, raw := newKey(t, "oas-bad@example.com")
	logs := captureLogs(t)
	a := oasAPI(t, "api-oas-bad")
	a.OAS.GetTykExtension().Middleware.Global.PluginConfig.Data.Value["keylens"].(map[string]interface{})["cache_size"] = "big"
	if rec, next := gateway.RunHook(KeylensAuth, gateway.RequestOAS(keyRequest(raw), a.OAS, "", nil)); next || rec.Code != 401 {
		t.Errorf("%d, want 401", rec.Code)
	}
	if !strings.Contains(logs.String(), `API "api-oas-bad": x-tyk-api-gateway.middleware.global.pluginConfig.data.value.keylens is invalid`) {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestOASPostAuth: the post-auth hook on an OAS API enriches the session
// the gateway authenticated, from the configured sidecar.
func TestOASPostAuth(t *testing.T) {
	dev, raw := newKey(t, "oas-post@example.com")
	a := oasAPI(t, "api-oas-post")
	r := gateway.RequestOAS(keyRequest(raw), a.OAS, raw, &user.SessionState{MetaData: map[string]interface{}{}})
	if rec, next := gateway.RunHook(KeylensPostAuth, r); !next {
		t.Fatalf("refused: %d %s", rec.Code, rec.Body)
	}
	if got := ctx.GetSession(r).MetaData["tyk_developer_id"]; got != dev || r.Header.Get("X-Developer-Id") != dev {
		t.Errorf("metadata developer %v, header %q; want %s", got, r.Header.Get("X-Developer-Id"), dev)
	}
}

// TestSessionsSurviveAStalledGateway: the gateway checks a session's
// expiry against its wall clock just after the auth hook. A gateway that
// stalls there for 300 ms (a loaded machine, a collection) still finds a
// valid key's session unexpired, wherever in the second the request
// falls: the late part of a second is where a short margin fails.
func TestSessionsSurviveAStalledGateway(t *testing.T) {
	_, raw := newKey(t, "stall@example.com")
	def := api(t, "")
	g := gateway.New()
	g.AddPolicy(gateway.Policy{ID: "pol-pay", OrgID: def.OrgID})
	g.PauseAfterAuth = 300 * time.Millisecond
	a := &gateway.API{Def: def, Auth: KeylensAuth}
	g.Do(t, a, keyRequest(raw)) // the key cached
	for _, phase := range []time.Duration{750 * time.Millisecond, 850 * time.Millisecond, 950 * time.Millisecond} {
		now := time.Now()
		time.Sleep(now.Truncate(time.Second).Add(time.Second + phase).Sub(now))
		if res := g.Do(t, a, keyRequest(raw)); res.Code != 200 {
			t.Errorf("a request at %v into a second, the gateway stalling 300 ms: %s", phase, strings.TrimSpace(res.Describe()))
		}
	}
}
