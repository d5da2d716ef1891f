// Package user doubles github.com/TykTechnologies/tyk/user: the identity
// fields of a session, with the gateway's names.
package user

// SessionState is a key's session, as the gateway keeps it.
type SessionState struct {
	KeyID         string                 `json:"key_id,omitempty"`
	Alias         string                 `json:"alias"`
	OrgID         string                 `json:"org_id"`
	MetaData      map[string]interface{} `json:"meta_data"`
	ApplyPolicies []string               `json:"apply_policies"`
	Tags          []string               `json:"tags"`
	Expires       int64                  `json:"expires"`
	IsInactive    bool                   `json:"is_inactive"`
	QuotaMax      int64                  `json:"quota_max"`
	// SessionLifetime, when set, is how long (seconds) the gateway keeps
	// the session once it persists it; the API's session_lifetime when 0.
	SessionLifetime int64 `json:"session_lifetime"`

	keyHash  string
	modified bool
}

// KeyHash is the hash of KeyID, set by ctx.SetSession.
func (s *SessionState) KeyHash() string { return s.keyHash }

// SetKeyHash sets the hash of KeyID.
func (s *SessionState) SetKeyHash(hash string) { s.keyHash = hash }

// KeyHashEmpty reports whether the key hash is unset.
func (s *SessionState) KeyHashEmpty() bool { return s.keyHash == "" }

// Touch marks the session for a write to the store after the middleware
// that touched it.
func (s *SessionState) Touch() { s.modified = true }

// IsModified reports whether the session was touched since it was last
// written.
func (s *SessionState) IsModified() bool { return s.modified }

// Reset clears the mark after a write.
func (s *SessionState) Reset() { s.modified = false }

// Clone returns a copy that shares nothing mutable with s.
func (s SessionState) Clone() SessionState {
	c := s
	if s.MetaData != nil {
		c.MetaData = make(map[string]interface{}, len(s.MetaData))
		for k, v := range s.MetaData {
			c.MetaData[k] = v
		}
	}
	c.ApplyPolicies = append([]string(nil), s.ApplyPolicies...)
	c.Tags = append([]string(nil), s.Tags...)
	return c
}
