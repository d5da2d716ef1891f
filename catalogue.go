package keylens

import (
	"bytes"
	"context"
	"encoding/json"
)

// Auth types a catalogue entry can name; they decide what approving a key
// request for its policy creates.
const (
	AuthToken = "authToken" // a Tyk-format key
	AuthBasic = "basic"     // a username and password
	AuthOAuth = "oauth"     // an OAuth client
	AuthJWT   = "jwt"       // a key id that JWTs name in "kid", bound to a secret or public key
)

// ValidAuthType reports whether t is one of the four auth types.
func ValidAuthType(t string) bool {
	switch t {
	case AuthToken, AuthBasic, AuthOAuth, AuthJWT:
		return true
	}
	return false
}

// Catalogue is the portal's list of published APIs, one per policy.
type Catalogue struct {
	ID    string           `json:"id"`
	OrgID string           `json:"org_id"`
	APIs  []CatalogueEntry `json:"apis"`
}

// CatalogueEntry publishes one policy. Config and Fields are kept as the
// client sent them (Tyk's per-entry portal config override and custom
// fields).
type CatalogueEntry struct {
	Name             string          `json:"name"`
	ShortDescription string          `json:"short_description"`
	LongDescription  string          `json:"long_description"`
	Show             bool            `json:"show"`
	APIID            string          `json:"api_id"`
	PolicyID         string          `json:"policy_id"`
	Documentation    string          `json:"documentation"`
	Version          string          `json:"version"`
	IsKeyless        bool            `json:"is_keyless"`
	Config           json.RawMessage `json:"config"`
	Fields           json.RawMessage `json:"fields"`
	AuthType         string          `json:"auth_type"`
}

// Entry returns the entry for policy, or nil.
func (c *Catalogue) Entry(policy string) *CatalogueEntry {
	for i := range c.APIs {
		if c.APIs[i].PolicyID == policy {
			return &c.APIs[i]
		}
	}
	return nil
}

// Normalize fills defaults: auth type authToken, config and fields {}, an
// empty API list.
func (c *Catalogue) Normalize() {
	if c.APIs == nil {
		c.APIs = []CatalogueEntry{}
	}
	for i := range c.APIs {
		e := &c.APIs[i]
		if e.AuthType == "" {
			e.AuthType = AuthToken
		}
		if isJSONNull(e.Config) {
			e.Config = json.RawMessage(`{}`)
		}
		if isJSONNull(e.Fields) {
			e.Fields = json.RawMessage(`{}`)
		}
	}
}

// Validate checks the entries: each needs a policy id, unique in the
// catalogue, and a known auth type; config and fields must be objects.
func (c *Catalogue) Validate() error {
	seen := map[string]bool{}
	for _, e := range c.APIs {
		if e.PolicyID == "" || len(e.PolicyID) > maxIDLength {
			return Errorf(EINVALID, "Every catalogue entry needs a policy_id")
		}
		if seen[e.PolicyID] {
			return Errorf(EINVALID, "Policy %s is published twice", e.PolicyID)
		}
		seen[e.PolicyID] = true
		if !ValidAuthType(e.AuthType) {
			return Errorf(EINVALID, "auth_type %q of policy %s: want authToken, basic, oauth or jwt", e.AuthType, e.PolicyID)
		}
		if !isJSONObject(e.Config) || !isJSONObject(e.Fields) {
			return Errorf(EINVALID, "config and fields of policy %s must be objects", e.PolicyID)
		}
	}
	return nil
}

// PortalConfig is the portal's configuration. The members keylens acts on
// are typed; every other member a client sends is kept and returned as is.
type PortalConfig struct {
	ID                 string
	OrgID              string
	SignupFields       []string
	KeyRequestFields   []string
	RequireKeyApproval bool
	// Other holds the remaining members, by name.
	Other map[string]json.RawMessage
}

var portalConfigMembers = []string{"id", "org_id", "signup_fields", "key_request_fields", "require_key_approval"}

// MarshalJSON writes the typed members over the kept ones.
func (p *PortalConfig) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(p.Other)+len(portalConfigMembers))
	for k, v := range p.Other {
		out[k] = v
	}
	out["id"], out["org_id"] = p.ID, p.OrgID
	out["signup_fields"], out["key_request_fields"] = nonNilStrings(p.SignupFields), nonNilStrings(p.KeyRequestFields)
	out["require_key_approval"] = p.RequireKeyApproval
	return json.Marshal(out)
}

// KeepsUnknownMembers says that a configuration keeps every member a
// client sends: none is unknown.
func (*PortalConfig) KeepsUnknownMembers() {}

// UnmarshalJSON reads a configuration object.
func (p *PortalConfig) UnmarshalJSON(b []byte) error {
	var typed struct {
		ID                 string   `json:"id"`
		OrgID              string   `json:"org_id"`
		SignupFields       []string `json:"signup_fields"`
		KeyRequestFields   []string `json:"key_request_fields"`
		RequireKeyApproval bool     `json:"require_key_approval"`
	}
	if err := json.Unmarshal(b, &typed); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, m := range portalConfigMembers {
		delete(all, m)
	}
	*p = PortalConfig{ID: typed.ID, OrgID: typed.OrgID, SignupFields: typed.SignupFields,
		KeyRequestFields: typed.KeyRequestFields, RequireKeyApproval: typed.RequireKeyApproval, Other: all}
	return nil
}

// CatalogueService keeps the catalogue and the portal configuration.
type CatalogueService interface {
	// Catalogue returns the catalogue; an empty one (no APIs) when none
	// was ever stored.
	Catalogue(ctx context.Context) (*Catalogue, error)
	// PutCatalogue replaces the catalogue. EINVALID for a bad entry.
	PutCatalogue(ctx context.Context, c *Catalogue) error
	// PortalConfig returns the configuration; defaults when none stored.
	PortalConfig(ctx context.Context) (*PortalConfig, error)
	// PutPortalConfig replaces the configuration.
	PutPortalConfig(ctx context.Context, p *PortalConfig) error
}

func isJSONNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

func isJSONObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
