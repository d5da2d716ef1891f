package rest

import (
	"net/http"

	"github.com/keylens/keylens"
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
	var c keylens.Catalogue
	if err := decode(w, r, &c, "apis"); err != nil { // a body without apis would wipe the catalogue
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
	var p keylens.PortalConfig
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
