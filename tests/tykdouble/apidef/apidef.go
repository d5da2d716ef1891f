// Package apidef doubles github.com/TykTechnologies/tyk/apidef: the part of
// an API definition a plugin reads, with the gateway's field names.
package apidef

// APIDefinition is an API's definition. ConfigData carries the definition's
// config_data object, the conventional place for plugin settings.
type APIDefinition struct {
	APIID                   string                 `json:"api_id"`
	OrgID                   string                 `json:"org_id"`
	Name                    string                 `json:"name"`
	Active                  bool                   `json:"active"`
	UseKeylessAccess        bool                   `json:"use_keyless"`
	UseStandardAuth         bool                   `json:"use_standard_auth"`
	CustomPluginAuthEnabled bool                   `json:"custom_plugin_auth_enabled"`
	Proxy                   ProxyConfig            `json:"proxy"`
	CustomMiddleware        MiddlewareSection      `json:"custom_middleware"`
	ConfigData              map[string]interface{} `json:"config_data"`
	Tags                    []string               `json:"tags"`
}

// ProxyConfig is where the API listens and what it proxies to.
type ProxyConfig struct {
	ListenPath      string `json:"listen_path"`
	TargetURL       string `json:"target_url"`
	StripListenPath bool   `json:"strip_listen_path"`
}

// MiddlewareDriver names the kind of custom middleware.
type MiddlewareDriver string

// GoPluginDriver is the driver of Go plugins.
const GoPluginDriver MiddlewareDriver = "goplugin"

// MiddlewareSection is custom_middleware: the hooks an API runs.
type MiddlewareSection struct {
	Pre         []MiddlewareDefinition `json:"pre"`
	Post        []MiddlewareDefinition `json:"post"`
	PostKeyAuth []MiddlewareDefinition `json:"post_key_auth"`
	AuthCheck   MiddlewareDefinition   `json:"auth_check"`
	Response    []MiddlewareDefinition `json:"response"`
	Driver      MiddlewareDriver       `json:"driver"`
}

// MiddlewareDefinition is one hook: a symbol of a plugin file.
type MiddlewareDefinition struct {
	Name           string `json:"name"`
	Path           string `json:"path"`
	RequireSession bool   `json:"require_session"`
	RawBodyOnly    bool   `json:"raw_body_only"`
}
