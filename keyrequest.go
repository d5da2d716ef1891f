package keylens

import (
	"encoding/json"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// KeyRequest is a developer's request for a key to one or more policies,
// in Tyk's shape. PortalDeveloper, CatalogueEntry and Catalogues are filled
// on reads of a single request, as Tyk embeds them.
type KeyRequest struct {
	ID             string         `json:"id"`
	Key            string         `json:"key"` // the hash of the key approval created
	OrgID          string         `json:"org_id"`
	ForAPI         string         `json:"for_api"`
	ForPlan        string         `json:"for_plan"`
	ApplyPolicies  []string       `json:"apply_policies"`
	RemovePolicies []string       `json:"remove_policies"`
	ByUser         string         `json:"by_user"`
	Fields         map[string]any `json:"fields"`
	Approved       bool           `json:"approved"`
	DateCreated    time.Time      `json:"date_created"`
	Version        string         `json:"version"`
	JWTSecret      string         `json:"jwt_secret"`
	Certificate    string         `json:"certificate"`
	OAuthInfo      OAuthInfo      `json:"oauth_info"`
	// ShowOnce keeps what approving the request issues (sealed under the
	// secrets key, when set) until its developer has seen it once in the
	// developer portal (AccountService.TakeReveals). Requests filed in the
	// portal set it; it is not part of Tyk's shape.
	ShowOnce bool `json:"-"`

	PortalDeveloper *Developer       `json:"portal_developer,omitempty"`
	CatalogueEntry  *CatalogueEntry  `json:"catalogue_entry,omitempty"`
	Catalogues      []CatalogueEntry `json:"catalogues,omitempty"`
}

// MarshalJSON writes the request with jwt_secret empty: the secret is
// write-only, kept until approval and then only with the key.
func (r KeyRequest) MarshalJSON() ([]byte, error) {
	type plain KeyRequest
	p := plain(r)
	p.JWTSecret = ""
	return json.Marshal(p)
}

// OAuthInfo carries what an OAuth client is created with.
type OAuthInfo struct {
	RedirectURI string `json:"redirect_uri"`
}

// Normalize applies Tyk's aliases and defaults: for_plan is the deprecated
// spelling of a single apply_policies entry; version defaults to v2.
func (r *KeyRequest) Normalize() {
	if len(r.ApplyPolicies) == 0 && r.ForPlan != "" {
		r.ApplyPolicies = []string{r.ForPlan}
	}
	if r.ForPlan == "" && len(r.ApplyPolicies) > 0 {
		r.ForPlan = r.ApplyPolicies[0]
	}
	if r.Version == "" {
		r.Version = "v2"
	}
	if r.Fields == nil {
		r.Fields = map[string]any{}
	}
	if r.ApplyPolicies == nil {
		r.ApplyPolicies = []string{}
	}
	if r.RemovePolicies == nil {
		r.RemovePolicies = []string{}
	}
}

// Validate checks what a request needs before it touches the store.
func (r *KeyRequest) Validate() error {
	if r.ByUser == "" {
		return Errorf(EINVALID, "by_user (the developer's id) is required")
	}
	if len(r.ApplyPolicies) == 0 {
		return Errorf(EINVALID, "apply_policies (or for_plan) needs at least one policy")
	}
	if len(r.ApplyPolicies) > 100 {
		return Errorf(EINVALID, "A key request applies at most 100 policies")
	}
	for _, p := range r.ApplyPolicies {
		if p == "" || len(p) > maxIDLength {
			return Errorf(EINVALID, "Policy ids must be 1 to %d characters", maxIDLength)
		}
	}
	if len(r.Fields) > MaxFieldCount {
		return Errorf(EINVALID, "A key request has at most %d fields", MaxFieldCount)
	}
	if err := ValidateFieldNames("fields", slices.Collect(maps.Keys(r.Fields))); err != nil {
		return err
	}
	if b, err := json.Marshal(r.Fields); err != nil || len(b) > 64<<10 {
		return Errorf(EINVALID, "Key request fields are limited to 64 KiB")
	}
	if len(r.JWTSecret) > 16<<10 || len(r.Certificate) > 16<<10 || len(r.OAuthInfo.RedirectURI) > MaxFieldLength {
		return Errorf(EINVALID, "jwt_secret, certificate or oauth_info is too long")
	}
	if LooksSealed(r.JWTSecret) {
		return Errorf(EINVALID, "jwt_secret must not start with %q", SealedPrefix)
	}
	return nil
}

// ValidateRedirectURI accepts an OAuth redirect URI a client may be sent
// to (RFC 6749 §3.1.2 and the OAuth 2.0 security BCP): absolute, https, or
// http on a loopback host only (a native app's listener), with no
// fragment and no credentials. javascript:, data: and every other scheme
// are refused.
func ValidateRedirectURI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return Errorf(EINVALID, "oauth_info.redirect_uri must be an absolute https URL")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return Errorf(EINVALID, "oauth_info.redirect_uri must not have a fragment")
	case u.User != nil:
		return Errorf(EINVALID, "oauth_info.redirect_uri must not carry credentials")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return Errorf(EINVALID, "oauth_info.redirect_uri must be https (http only on a loopback host)")
	default:
		return Errorf(EINVALID, "oauth_info.redirect_uri scheme %q is not allowed: use https", u.Scheme)
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Approval is what approving a key request hands out, once. RawKey and
// Password are never stored.
type Approval struct {
	RawKey   string
	Password string
	KeyHash  string
	// OAuthClient is set for oauth entries instead of RawKey.
	OAuthClient *OAuthClient
	PolicyID    string
}

// MarshalJSON answers in Tyk's shapes: {"RawKey","Password"} for keys, the
// client's id, secret, policy and redirect URI for OAuth.
func (a *Approval) MarshalJSON() ([]byte, error) {
	if a.OAuthClient != nil {
		return json.Marshal(map[string]string{
			"client_id": a.OAuthClient.ClientID, "secret": a.OAuthClient.Secret,
			"policy_id": a.PolicyID, "redirect_uri": a.OAuthClient.RedirectURI,
		})
	}
	return json.Marshal(map[string]string{"RawKey": a.RawKey, "Password": a.Password})
}

// KeyRequestFilter selects key requests.
type KeyRequestFilter struct {
	Approved      *bool  // nil: both
	ByUser        string // "": every developer's
	Offset, Limit int
}
