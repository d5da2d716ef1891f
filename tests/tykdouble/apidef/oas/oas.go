// Package oas doubles github.com/TykTechnologies/tyk/apidef/oas: an API
// defined in Tyk's OAS format, and the part of its x-tyk-api-gateway
// extension a plugin reads, with the gateway's names, types and JSON.
//
// The gateway's OAS embeds kin-openapi's openapi3.T; the double embeds a
// stand-in holding only what the gateway's own methods here read of it,
// Extensions, where a decoded document keeps its x- members. So plugin
// code must reach the extension through GetTykExtension, as it would in
// the gateway.
package oas

import (
	"encoding/json"

	"github.com/TykTechnologies/tyk/apidef"
)

// ExtensionTykAPIGateway is the name of Tyk's extension in the document.
const ExtensionTykAPIGateway = "x-tyk-api-gateway"

// OAS is an OpenAPI document with Tyk's extension.
type OAS struct {
	T
}

// T stands in for openapi3.T: the document, of which the double keeps the
// version and the extensions.
type T struct {
	OpenAPI    string                 `json:"openapi"`
	Extensions map[string]interface{} `json:"-"`
}

// GetTykExtension returns the x-tyk-api-gateway extension, or nil. As the
// gateway's does, it converts an extension still held as decoded JSON (a
// json.RawMessage or a map) into *XTykAPIGateway and stores that back in
// Extensions: the first call writes to the document. The gateway makes
// that call when it loads the API, before any request.
func (s *OAS) GetTykExtension() *XTykAPIGateway {
	if s.Extensions == nil {
		return nil
	}
	ext := s.Extensions[ExtensionTykAPIGateway]
	if ext == nil {
		return nil
	}
	var raw []byte
	switch v := ext.(type) {
	case json.RawMessage:
		raw = v
	case map[string]interface{}:
		raw, _ = json.Marshal(v)
	default:
		return ext.(*XTykAPIGateway)
	}
	var x XTykAPIGateway
	_ = json.Unmarshal(raw, &x)
	s.Extensions[ExtensionTykAPIGateway] = &x
	return &x
}

// SetTykExtension sets the extension.
func (s *OAS) SetTykExtension(x *XTykAPIGateway) {
	if s.Extensions == nil {
		s.Extensions = map[string]interface{}{}
	}
	s.Extensions[ExtensionTykAPIGateway] = x
}

// XTykAPIGateway is the x-tyk-api-gateway extension.
type XTykAPIGateway struct {
	Info       Info        `json:"info"`
	Upstream   Upstream    `json:"upstream"`
	Server     Server      `json:"server"`
	Middleware *Middleware `json:"middleware,omitempty"`
}

// Info is the API's identity: its classic api_id, org_id and name.
type Info struct {
	ID    string `json:"id,omitempty"`
	OrgID string `json:"orgId,omitempty"`
	Name  string `json:"name"`
	State State  `json:"state"`
}

// State is whether the API is active.
type State struct {
	Active bool `json:"active"`
}

// Upstream is where the API proxies to.
type Upstream struct {
	URL string `json:"url"`
}

// Server is where the API listens.
type Server struct {
	ListenPath ListenPath `json:"listenPath"`
}

// ListenPath is the API's listen path.
type ListenPath struct {
	Value string `json:"value"`
	Strip bool   `json:"strip,omitempty"`
}

// Middleware is the API's middleware configuration.
type Middleware struct {
	Global *Global `json:"global,omitempty"`
}

// Global is the configuration of the whole API.
type Global struct {
	PluginConfig *PluginConfig `json:"pluginConfig,omitempty"`
}

// PluginConfig is the custom plugins' common configuration.
type PluginConfig struct {
	Driver apidef.MiddlewareDriver `json:"driver,omitempty"`
	Data   *PluginConfigData       `json:"data,omitempty"`
}

// PluginConfigData is the custom plugins' config data: the classic
// definition's config_data (Value), and whether it is enabled (the
// classic config_data_disabled, negated).
type PluginConfigData struct {
	Enabled bool                   `json:"enabled"`
	Value   map[string]interface{} `json:"value"`
}
