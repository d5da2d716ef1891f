// Package user doubles github.com/TykTechnologies/tyk/user: the identity
// fields of a session.
package user

// SessionState is a key's session, as the gateway keeps it.
type SessionState struct {
	KeyID         string                 `json:"key_id"`
	Alias         string                 `json:"alias"`
	OrgID         string                 `json:"org_id"`
	MetaData      map[string]interface{} `json:"meta_data"`
	ApplyPolicies []string               `json:"apply_policies"`
	Tags          []string               `json:"tags"`
	Expires       int64                  `json:"expires"`
	IsInactive    bool                   `json:"is_inactive"`
}
