package rest

import (
	"net/http"
	"time"

	"github.com/keylens/keylens"
)

// OAuth access tokens: the Tyk Classic Portal API's two revocations (admin key), and the
// routes a sidecar in another process (keylens sidecar --portal) issues
// and revokes tokens through on behalf of clients that authenticated to
// it.

// maxTokenLength bounds a token reference in a body; keylens's tokens are
// 48 characters, Tyk's some 120.
const maxTokenLength = 1024

// maxClientIDLength is the store's bound on ids.
const maxClientIDLength = 512

func checkClientID(id string) error {
	if id == "" || len(id) > maxClientIDLength {
		return keylens.Errorf(keylens.ENOTFOUND, "OAuth client not found")
	}
	return nil
}

// POST /oauth-clients/{id}/revoke (and under /api/portal/):
// {"token","token_type_hint"} → "token revoked successfully".
func (s *Server) revokeOAuthToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token         string `json:"token"`
		TokenTypeHint string `json:"token_type_hint"`
	}
	if err := decode(w, r, &in, "token"); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if in.Token == "" || len(in.Token) > maxTokenLength {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "token is required (at most %d characters)", maxTokenLength))
		return
	}
	id := r.PathValue("id")
	if err := checkClientID(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Revoker.RevokeToken(r.Context(), id, in.Token, in.TokenTypeHint); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "token revoked successfully")
}

// POST /oauth-clients/{id}/revoke_all (and under /api/portal/):
// {"client_secret"} → "tokens revoked successfully".
func (s *Server) revokeAllOAuthTokens(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := decode(w, r, &in, "client_secret"); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if in.ClientSecret == "" {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "client_secret is required"))
		return
	}
	id := r.PathValue("id")
	if err := checkClientID(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Revoker.RevokeAllTokens(r.Context(), id, in.ClientSecret); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "tokens revoked successfully")
}

// clientTokenBody is what the sidecar's routes send: the client's
// credentials as it presented them, and the token's hash (the token itself
// never leaves the sidecar).
type clientTokenBody struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	TokenHash    string `json:"token_hash"`
	TTLSeconds   int64  `json:"ttl_seconds,omitempty"`
}

// maxTokenTTL bounds a token's life: a year.
const maxTokenTTL = 366 * 24 * time.Hour

// POST /api/keylens/oauth/tokens: files a token for a client that
// authenticated to a sidecar; answers the grant.
func (s *Server) issueOAuthToken(w http.ResponseWriter, r *http.Request) {
	var in clientTokenBody
	if err := decode(w, r, &in, "client_id", "client_secret", "token_hash", "ttl_seconds"); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if in.TTLSeconds < 1 || in.TTLSeconds > int64(maxTokenTTL/time.Second) {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "ttl_seconds must be 1 to %d", int64(maxTokenTTL/time.Second)))
		return
	}
	g, err := s.Tokens.IssueToken(r.Context(), keylens.ClientCredentials{ID: in.ClientID, Secret: in.ClientSecret},
		in.TokenHash, time.Duration(in.TTLSeconds)*time.Second)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// POST /api/keylens/oauth/tokens/revoke: revokes a token of a client that
// authenticated to a sidecar (RFC 7009).
func (s *Server) revokeClientToken(w http.ResponseWriter, r *http.Request) {
	var in clientTokenBody
	if err := decode(w, r, &in, "client_id", "client_secret", "token_hash"); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if err := s.Tokens.RevokeClientToken(r.Context(), keylens.ClientCredentials{ID: in.ClientID, Secret: in.ClientSecret}, in.TokenHash); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "token revoked successfully")
}
