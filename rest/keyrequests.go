package rest

import (
	"net/http"
	"strconv"

	"github.com/keylens/keylens"
)

// GET /api/portal/requests?p=N&approved=true|false
func (s *Server) listKeyRequests(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var f keylens.KeyRequestFilter
	if v := r.URL.Query().Get("approved"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "approved must be true or false"))
			return
		}
		f.Approved = &b
	}
	if p > 0 {
		f.Offset, f.Limit = pageOffset(p), PageSize
	}
	reqs, total, err := s.Keys.FindKeyRequests(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list[*keylens.KeyRequest]{Data: reqs, Pages: pages(total)})
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
	var kr keylens.KeyRequest
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
	var kr keylens.KeyRequest
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
