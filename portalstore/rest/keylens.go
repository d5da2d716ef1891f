package rest

import (
	"net/http"

	"github.com/keylens/keylens/portalstore"
)

// keylens's own routes, under /api/keylens/, serve sidecars that run
// against a portal instead of a store (keylens sidecar --portal URL). They
// need the admin key like every other route.

// keyRecord is a key with the material that verifies its credentials: the
// bcrypt hash of a basic key's password, a JWT key's HMAC secret or public
// key. Only the admin key can read it, as only it can mint keys.
type keyRecord struct {
	*portalstore.Key
	BasicPasswordHash string `json:"basic_password_hash,omitempty"`
	JWTSecret         string `json:"jwt_secret,omitempty"`
	JWTPublicKey      string `json:"jwt_public_key,omitempty"`
}

func writeKey(w http.ResponseWriter, k *portalstore.Key) {
	writeJSON(w, http.StatusOK, keyRecord{Key: k, BasicPasswordHash: k.BasicPasswordHash,
		JWTSecret: k.JWTSecret, JWTPublicKey: k.JWTPublicKey})
}

// GET /api/keylens/keys/{hash}: the key with that hash.
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.Keys.FindKey(r.Context(), r.PathValue("hash"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeKey(w, k)
}

// GET /api/keylens/keys?basic_username=U: the basic key of username U.
func (s *Server) findKey(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("basic_username")
	if user == "" {
		s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "basic_username is required"))
		return
	}
	k, err := s.Keys.FindKeyByBasicUsername(r.Context(), user)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeKey(w, k)
}

// GET /api/keylens/changes/last: {"last": N}, the newest change's sequence
// number, where a new reader of the feed starts.
func (s *Server) lastChange(w http.ResponseWriter, r *http.Request) {
	last, err := s.Changes.LastChange(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Last int64 `json:"last"`
	}{last})
}
