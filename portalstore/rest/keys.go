package rest

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/keylens/keylens/portalstore"
)

// GET /api/portal/catalogue
func (s *Server) getCatalogue(w http.ResponseWriter, r *http.Request) {
	c, err := s.Catalogue.Catalogue(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// POST and PUT /api/portal/catalogue: replace the catalogue → Message: its id.
func (s *Server) putCatalogue(w http.ResponseWriter, r *http.Request) {
	var c portalstore.Catalogue
	if err := decode(w, r, &c); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if err := s.Catalogue.PutCatalogue(r.Context(), &c); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, c.ID)
}

// GET /api/portal/configuration
func (s *Server) getConfiguration(w http.ResponseWriter, r *http.Request) {
	p, err := s.Catalogue.PortalConfig(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// POST and PUT /api/portal/configuration → Message: its id.
func (s *Server) putConfiguration(w http.ResponseWriter, r *http.Request) {
	var p portalstore.PortalConfig
	if err := decode(w, r, &p); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if err := s.Catalogue.PutPortalConfig(r.Context(), &p); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, p.ID)
}

// GET /api/portal/requests?p=N&approved=true|false
func (s *Server) listKeyRequests(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var f portalstore.KeyRequestFilter
	if v := r.URL.Query().Get("approved"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "approved must be true or false"))
			return
		}
		f.Approved = &b
	}
	if p > 0 {
		f.Offset, f.Limit = (p-1)*PageSize, PageSize
	}
	reqs, total, err := s.Keys.FindKeyRequests(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list[*portalstore.KeyRequest]{Data: reqs, Pages: pages(total)})
}

// GET /api/portal/requests/{id}
func (s *Server) getKeyRequest(w http.ResponseWriter, r *http.Request) {
	kr, err := s.Keys.FindKeyRequestByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, kr)
}

// POST /api/portal/requests → Message: the new request's id.
func (s *Server) createKeyRequest(w http.ResponseWriter, r *http.Request) {
	var kr portalstore.KeyRequest
	if err := decode(w, r, &kr); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if err := s.Keys.CreateKeyRequest(r.Context(), &kr); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, kr.ID)
}

// PUT (and Tyk's UPDATE) /api/portal/requests/{id} → Message: the id.
func (s *Server) updateKeyRequest(w http.ResponseWriter, r *http.Request) {
	var kr portalstore.KeyRequest
	if err := decode(w, r, &kr); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if err := s.Keys.UpdateKeyRequest(r.Context(), id, &kr); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, id)
}

// DELETE /api/portal/requests/{id}
func (s *Server) deleteKeyRequest(w http.ResponseWriter, r *http.Request) {
	if err := s.Keys.DeleteKeyRequest(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data deleted")
}

// PUT /api/portal/requests/approve/{id} → {"RawKey","Password"}, or the
// OAuth client for oauth entries.
func (s *Server) approveKeyRequest(w http.ResponseWriter, r *http.Request) {
	a, err := s.Keys.ApproveKeyRequest(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// keyRequestBody is what the developer-key routes read.
type keyRequestBody struct {
	ApplyPolicies []string              `json:"apply_policies"`
	PolicyID      string                `json:"policy_id"` // deprecated subscriptions route
	Fields        map[string]any        `json:"fields"`
	OAuthInfo     portalstore.OAuthInfo `json:"oauth_info"`
	JWTSecret     string                `json:"jwt_secret"`
	Certificate   string                `json:"certificate"`
}

// issueKey files and approves a request for developer devID; it serves
// POST .../developers/{id}/keys and the deprecated .../{id}/subscriptions.
func (s *Server) issueKey(w http.ResponseWriter, r *http.Request, devID string) {
	var in keyRequestBody
	if err := decode(w, r, &in); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	kr := &portalstore.KeyRequest{ApplyPolicies: in.ApplyPolicies, ForPlan: in.PolicyID, Fields: in.Fields,
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
	if err := s.Keys.SetKeyPolicies(r.Context(), devID, portalstore.KeyID(keyID), policies); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data updated")
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, devID, keyID string) {
	if err := s.Keys.RevokeKey(r.Context(), devID, portalstore.KeyID(keyID)); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data deleted")
}

func (s *Server) resetQuota(w http.ResponseWriter, r *http.Request, devID, keyID string) {
	if err := s.Keys.ResetKeyQuota(r.Context(), devID, portalstore.KeyID(keyID)); err != nil {
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

// changesResponse is one long-poll answer of the change feed.
type changesResponse struct {
	Changes []portalstore.Change `json:"changes"`
	// Last is the position to ask from next time.
	Last int64 `json:"last"`
	// Reset tells the reader that changes it never saw were pruned: it
	// must drop everything it cached.
	Reset bool `json:"reset"`
}

// maxChangeWait bounds a long poll well inside the server's write timeout.
const maxChangeWait = 30 * time.Second

// GET /api/keylens/changes?after=N&limit=L&wait=DURATION: the changes after
// N, waiting up to wait (default 0, at most 30s) for one to arrive.
func (s *Server) listChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if q.Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "after must be a sequence number"))
		return
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 10000 {
			s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "limit must be 1 to 10000"))
			return
		}
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 {
			s.writeError(w, r, portalstore.Errorf(portalstore.EINVALID, "wait must be a duration such as 25s"))
			return
		}
		wait = min(wait, maxChangeWait)
	}
	select {
	case <-s.stop:
		wait = 0 // shutting down: answer what there is
	default:
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	changes, gap, err := s.Changes.WaitForChanges(ctx, after, limit, wait)
	if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
		// Shutdown ended the wait: answer what there is now.
		changes, gap, err = s.Changes.ChangesSince(r.Context(), after, limit)
	}
	if err != nil {
		if r.Context().Err() != nil {
			return // the client went away
		}
		s.writeError(w, r, err)
		return
	}
	last := after
	if len(changes) > 0 {
		last = changes[len(changes)-1].Seq
	}
	writeJSON(w, http.StatusOK, changesResponse{Changes: changes, Last: last, Reset: gap})
}
