package rest

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
)

// PageSize is Tyk's page size for portal lists.
const PageSize = 10

// page reads Tyk's "p" parameter: 1-based; absent, 0 or negative means
// everything. Anything that is not an integer is EINVALID.
func page(r *http.Request) (int, error) {
	v := r.URL.Query().Get("p")
	if v == "" {
		return 0, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil {
		return 0, keylens.Errorf(keylens.EINVALID, "p must be a whole number")
	}
	return max(p, 0), nil
}

// pages is the number of PageSize pages that total items fill.
// pageOffset is where page p (from 1) starts; a page past any possible
// result saturates instead of wrapping round to page 1.
func pageOffset(p int) int {
	if p-1 > math.MaxInt32/PageSize {
		return math.MaxInt32
	}
	return (p - 1) * PageSize
}

func pages(total int) int {
	return (total + PageSize - 1) / PageSize
}

// GET /api/portal/developers?p=N&q=EMAIL-SUBSTRING
func (s *Server) listDevelopers(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query().Get("q")
	if strings.ContainsFunc(q, unicode.IsControl) {
		s.writeError(w, r, keylens.Errorf(keylens.EINVALID, "q must not contain control characters"))
		return
	}
	filter := keylens.DeveloperFilter{EmailContains: q}
	if p > 0 {
		filter.Offset, filter.Limit = pageOffset(p), PageSize
	}
	devs, total, err := s.Developers.FindDevelopers(r.Context(), filter)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list[*keylens.Developer]{Data: devs, Pages: pages(total)})
}

// GET /api/portal/developers/{id}
func (s *Server) getDeveloper(w http.ResponseWriter, r *http.Request) {
	d, err := s.Developers.FindDeveloperByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// GET /api/portal/developers/email/{email}, the email URL-encoded. Answers
// the bare developer object, as Tyk does.
// GET /api/portal/developers/{a}/{b}: email/{email} or {id}/usage, one
// pattern because Go's ServeMux refuses the two as ambiguous.
func (s *Server) getDeveloperPair(w http.ResponseWriter, r *http.Request) {
	a, b := r.PathValue("a"), r.PathValue("b")
	switch {
	case a == "email":
		s.getDeveloperByEmail(w, r, b)
	case b == "usage":
		s.developerUsage(w, r, a)
	default:
		s.writeError(w, r, keylens.Errorf(keylens.ENOTFOUND, "Not found"))
	}
}

func (s *Server) getDeveloperByEmail(w http.ResponseWriter, r *http.Request, email string) {
	d, err := s.Developers.FindDeveloperByEmail(r.Context(), email)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// POST /api/portal/developers → Message: the new developer's id.
func (s *Server) createDeveloper(w http.ResponseWriter, r *http.Request) {
	var d keylens.Developer
	if err := decode(w, r, &d); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if err := s.Developers.CreateDeveloper(r.Context(), &d); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, d.ID)
}

// PUT /api/portal/developers/{id}: a full replacement (see
// DeveloperService.UpdateDeveloper for what an omitted member keeps).
func (s *Server) updateDeveloper(w http.ResponseWriter, r *http.Request) {
	var d keylens.Developer
	if err := decode(w, r, &d); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if err := s.Developers.UpdateDeveloper(r.Context(), r.PathValue("id"), &d); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data updated")
}

// DELETE /api/portal/developers/{id}
func (s *Server) deleteDeveloper(w http.ResponseWriter, r *http.Request) {
	if err := s.Developers.DeleteDeveloper(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Data deleted")
}

// POST /api/portal/developers/verify_credentials {"username","password"}:
// 200 when they match an active developer, 401 otherwise.
func (s *Server) verifyCredentials(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &in); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	var verr error
	out, err := s.SignIn.Attempt(guard.DeveloperAccount(in.Username), guard.Client(r), func() (bool, error) {
		_, verr = s.Developers.VerifyCredentials(r.Context(), strings.TrimSpace(in.Username), in.Password)
		return guard.Credentials(verr)
	})
	switch {
	case err != nil:
		s.writeError(w, r, err)
	case out.Verdict == guard.Refused:
		// Before any password is checked: this client has failed too
		// often lately, on this account or anywhere.
		w.Header().Set("Retry-After", strconv.Itoa(out.RetrySeconds()))
		s.writeError(w, r, keylens.Errorf(keylens.ELIMITED, "Too many failed attempts: retry in %d seconds", out.RetrySeconds()))
	case out.Verdict == guard.Wrong:
		s.writeError(w, r, verr)
	default:
		writeOK(w, "Credentials verified")
	}
}

// POST /api/portal/developers/password/{id} {"password"}. Any failure is
// Tyk's "Developer password validation failed.", with the status telling
// an unknown developer (404) from an unacceptable password (400).
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(w, r, &in); err != nil {
		s.writeDecodeError(w, r, err)
		return
	}
	if err := s.Developers.SetPassword(r.Context(), r.PathValue("id"), in.Password); err != nil {
		if code := keylens.ErrorCode(err); code == keylens.EINVALID || code == keylens.ENOTFOUND {
			writeJSON(w, HTTPStatus(code), envelope{Status: "Error", Message: "Developer password validation failed."})
			return
		}
		s.writeError(w, r, err)
		return
	}
	writeOK(w, "Password changed")
}
