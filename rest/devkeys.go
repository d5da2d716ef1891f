package rest

import (
	"net/http"

	"github.com/keylens/keylens"
)

// keyRequestBody is what the developer-key routes read.
type keyRequestBody struct {
	ApplyPolicies []string          `json:"apply_policies"`
	PolicyID      string            `json:"policy_id"` // deprecated subscriptions route
	Fields        map[string]any    `json:"fields"`
	OAuthInfo     keylens.OAuthInfo `json:"oauth_info"`
	JWTSecret     string            `json:"jwt_secret"`
	Certificate   string            `json:"certificate"`
}

// issueKey files and approves a request for developer devID; it serves
// POST .../developers/{id}/keys and the deprecated .../{id}/subscriptions.
func (s *Server) issueKey(w http.ResponseWriter, r *http.Request, devID string) {
	var in keyRequestBody
	if err := decode(w, r, &in); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	kr := &keylens.KeyRequest{ApplyPolicies: in.ApplyPolicies, ForPlan: in.PolicyID, Fields: in.Fields,
		OAuthInfo: in.OAuthInfo, JWTSecret: in.JWTSecret, Certificate: in.Certificate}
	a, err := s.Keys.IssueKey(r.Context(), devID, kr)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// PUT /api/portal/developers/{id}/keys/{keyId} {"apply_policies"}
func (s *Server) setKeyPolicies(w http.ResponseWriter, r *http.Request) {
	var in keyRequestBody
	if err := decode(w, r, &in); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	s.changePolicies(w, r, r.PathValue("id"), r.PathValue("keyId"), in.ApplyPolicies)
}

// GET /api/portal/developers/{devId}/{keyId}/{policyId} (deprecated): the
// key's policies become the one named.
func (s *Server) setKeyPolicyDeprecated(w http.ResponseWriter, r *http.Request) {
	s.changePolicies(w, r, r.PathValue("devId"), r.PathValue("keyId"), []string{r.PathValue("policyId")})
}

func (s *Server) changePolicies(w http.ResponseWriter, r *http.Request, devID, keyID string, policies []string) {
	if err := s.Keys.SetKeyPolicies(r.Context(), devID, keylens.KeyHashOf(keyID), policies); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data updated")
}

// rotateBody is what POST .../keys/{keyId}/rotate reads: the grace period
// of the key replaced, and a jwt key's new verification material.
type rotateBody struct {
	GracePeriod string `json:"grace_period"`
	JWTSecret   string `json:"jwt_secret"`
	Certificate string `json:"certificate"`
}

// POST /api/keylens/developers/{id}/keys/{keyId}/rotate
// {"grace_period":"24h"}: a new key replaces the key, which keeps working
// for the grace period (keylens.KeyService.RotateKey); for an OAuth
// client's id, a new secret replaces its secret likewise
// (RotateOAuthSecret).
func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) {
	var in rotateBody
	if err := decode(w, r, &in, "grace_period"); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	grace, err := keylens.ParseGrace(in.GracePeriod)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	devID, keyID := r.PathValue("id"), r.PathValue("keyId")
	rot, err := s.Keys.RotateKey(r.Context(), devID, keylens.KeyHashOf(keyID),
		keylens.KeyRotation{Grace: grace, JWTSecret: in.JWTSecret, Certificate: in.Certificate})
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		// Not a key of the developer's: one of their OAuth clients, by
		// its client id, gets a new secret instead.
		sec, cerr := s.Keys.RotateOAuthSecret(r.Context(), devID, keyID, grace)
		if keylens.ErrorCode(cerr) != keylens.ENOTFOUND {
			if cerr != nil {
				s.writeError(w, r, cerr)
				return
			}
			writeJSON(w, http.StatusOK, sec)
			return
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rot)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, devID, keyID string) {
	if err := s.Keys.RevokeKey(r.Context(), devID, keylens.KeyHashOf(keyID)); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data deleted")
}

func (s *Server) resetQuota(w http.ResponseWriter, r *http.Request, devID, keyID string) {
	if err := s.Keys.ResetKeyQuota(r.Context(), devID, keylens.KeyHashOf(keyID)); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Quota reset")
}

func (s *Server) deleteOAuthClient(w http.ResponseWriter, r *http.Request, clientID string) {
	if err := s.Keys.DeleteOAuthClient(r.Context(), clientID); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data deleted")
}

// Tyk's developer routes overlap in ways Go's ServeMux refuses to register
// side by side (POST .../password/{id} and .../{id}/keys both match
// .../password/keys). Each overlapping shape gets one pattern and is
// dispatched here on its literal segments, Tyk's own routes first.

// POST /api/portal/developers/{a}/{b}
func (s *Server) postDeveloperPair(w http.ResponseWriter, r *http.Request) {
	a, b := r.PathValue("a"), r.PathValue("b")
	switch {
	case a == "password":
		r.SetPathValue("id", b)
		s.setPassword(w, r)
	case b == "keys", b == "subscriptions":
		s.issueKey(w, r, a)
	default:
		writeJSON(w, http.StatusNotFound, envelope{Status: "Error", Message: "Not found"})
	}
}

// DELETE /api/portal/developers/{a}/{b}/{c}
func (s *Server) deleteDeveloperTriple(w http.ResponseWriter, r *http.Request) {
	a, b, c := r.PathValue("a"), r.PathValue("b"), r.PathValue("c")
	switch {
	case a == "oauth": // oauth/{apiId}/{appId}
		s.deleteOAuthClient(w, r, c)
	case b == "keys": // {id}/keys/{keyId}
		s.revokeKey(w, r, a, c)
	default:
		writeJSON(w, http.StatusNotFound, envelope{Status: "Error", Message: "Not found"})
	}
}
