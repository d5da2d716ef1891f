package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/TykTechnologies/tyk/apidef"
	"github.com/TykTechnologies/tyk/apidef/oas"
	"github.com/TykTechnologies/tyk/ctx"
	"github.com/TykTechnologies/tyk/user"
)

// OASAPI loads an API defined in Tyk's OAS format, as the gateway does: the
// document's x-tyk-api-gateway member is kept in Extensions as decoded JSON
// (a map), then converted once by GetTykExtension, before any request; and
// the classic definition the gateway runs with is extracted from it (API
// id, org, name, listen path, upstream, and the plugin config data's value
// as config_data). Set the API's hooks on the result.
func OASAPI(doc []byte) (*API, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, err
	}
	o := &oas.OAS{}
	_ = json.Unmarshal(top["openapi"], &o.OpenAPI)
	if raw, ok := top[oas.ExtensionTykAPIGateway]; ok {
		var ext map[string]interface{}
		if err := json.Unmarshal(raw, &ext); err != nil {
			return nil, fmt.Errorf("%s: %w", oas.ExtensionTykAPIGateway, err)
		}
		o.Extensions = map[string]interface{}{oas.ExtensionTykAPIGateway: ext}
	}
	x := o.GetTykExtension()
	if x == nil {
		return nil, fmt.Errorf("no %s extension", oas.ExtensionTykAPIGateway)
	}
	def := &apidef.APIDefinition{
		APIID: x.Info.ID, OrgID: x.Info.OrgID, Name: x.Info.Name, Active: x.Info.State.Active,
		Proxy: apidef.ProxyConfig{ListenPath: x.Server.ListenPath.Value, TargetURL: x.Upstream.URL, StripListenPath: x.Server.ListenPath.Strip},
	}
	if mw := x.Middleware; mw != nil && mw.Global != nil && mw.Global.PluginConfig != nil {
		pc := mw.Global.PluginConfig
		def.CustomMiddleware.Driver = pc.Driver
		if pc.Data != nil {
			def.ConfigData = pc.Data.Value
		}
	}
	return &API{OAS: o, Def: def}, nil
}

// RequestOAS is Request for an API defined in Tyk's OAS format: its
// *oas.OAS is in the context under ctx.OASDefinition, and no classic
// definition is.
func RequestOAS(r *http.Request, o *oas.OAS, token string, session *user.SessionState) *http.Request {
	return request(r, token, session, ctx.OASDefinition, o)
}
