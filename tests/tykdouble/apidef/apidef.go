// Package apidef doubles github.com/TykTechnologies/tyk/apidef: the part of
// an API definition a plugin reads.
package apidef

// APIDefinition is an API's definition. ConfigData carries the definition's
// config_data object, the conventional place for plugin settings.
type APIDefinition struct {
	APIID      string                 `json:"api_id"`
	OrgID      string                 `json:"org_id"`
	Name       string                 `json:"name"`
	ConfigData map[string]interface{} `json:"config_data"`
}
