package web

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

const requestsPerPage = 20

type requestsData struct {
	Pending, Approved           []requestRow
	PendingTotal, ApprovedTotal int
	PendingPage, ApprovedPage   pager
	RequireApproval             bool
}

type requestRow struct {
	ID             string
	DeveloperID    string
	DeveloperEmail string
	Policies       []policyRow
	AuthType       string
	Fields         []fieldRow
	RedirectURI    string
	HasJWTMaterial bool
	// NeedsJWTMaterial: a jwt request filed without material (as custom
	// portals file them), which approval cannot issue without (JWTs are
	// not verified centrally): Approve asks for it.
	NeedsJWTMaterial bool
	Created          time.Time
	KeyHash, Short   string
	Revoked          bool // the key approval issued is revoked
}

// GET /admin/requests?p=&ap=: Key requests, pending first (oldest first:
// a queue), then the approved ones (newest first).
func (c *Console) requestsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cat, err := c.Catalogue.Catalogue(ctx)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	cfg, err := c.Catalogue.PortalConfig(ctx)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	q := r.URL.Query()
	link := func(p, ap int) string {
		return Prefix + "requests?" + url.Values{"p": {strconv.Itoa(p)}, "ap": {strconv.Itoa(ap)}}.Encode()
	}
	p := pageParam(r)
	ap, err := strconv.Atoi(q.Get("ap"))
	if err != nil || ap < 1 {
		ap = 1
	}
	ap = min(ap, 1<<20)

	no, yes := false, true
	pending, pendingTotal, err := c.Keys.FindKeyRequests(ctx, keylens.KeyRequestFilter{Approved: &no,
		Offset: (p - 1) * requestsPerPage, Limit: requestsPerPage})
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	// Approved requests come oldest first from the store: page from the
	// end for newest first.
	_, approvedTotal, err := c.Keys.FindKeyRequests(ctx, keylens.KeyRequestFilter{Approved: &yes, Limit: 1})
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	var approved []*keylens.KeyRequest
	if end := approvedTotal - (ap-1)*requestsPerPage; end > 0 {
		start := max(0, end-requestsPerPage)
		approved, _, err = c.Keys.FindKeyRequests(ctx, keylens.KeyRequestFilter{Approved: &yes, Offset: start, Limit: end - start})
		if err != nil {
			c.errorPage(w, r, err)
			return
		}
		slices.Reverse(approved)
	}
	d := requestsData{PendingTotal: pendingTotal, ApprovedTotal: approvedTotal, RequireApproval: cfg.RequireKeyApproval,
		PendingPage:  newPager(p, pendingTotal, requestsPerPage, func(n int) string { return link(n, ap) }),
		ApprovedPage: newPager(ap, approvedTotal, requestsPerPage, func(n int) string { return link(p, n) })}
	for _, kr := range pending {
		row := requestRowOf(kr, cat)
		row.NeedsJWTMaterial = c.needsJWTMaterial(row)
		d.Pending = append(d.Pending, row)
	}
	for _, kr := range approved {
		row := requestRowOf(kr, cat)
		// The key it issued may be revoked since: say so, rather than
		// link to a page that is gone.
		if row.KeyHash != "" {
			switch _, err := c.Keys.FindKey(ctx, row.KeyHash); keylens.ErrorCode(err) {
			case "":
			case keylens.ENOTFOUND:
				row.Revoked = true
			default:
				c.errorPage(w, r, err)
				return
			}
		}
		d.Approved = append(d.Approved, row)
	}
	c.render(w, r, http.StatusOK, "requests", view{Title: "Key requests", Nav: "requests", Flash: c.flash(r), Data: d})
}

func requestRowOf(kr *keylens.KeyRequest, cat *keylens.Catalogue) requestRow {
	row := requestRow{ID: kr.ID, DeveloperID: kr.ByUser, Created: kr.DateCreated, KeyHash: kr.Key, Short: shortHash(kr.Key),
		RedirectURI: kr.OAuthInfo.RedirectURI, HasJWTMaterial: kr.JWTSecret != "" || kr.Certificate != "", AuthType: "(No Catalog Entry)"}
	if kr.PortalDeveloper != nil {
		row.DeveloperEmail = kr.PortalDeveloper.Email
	}
	for i, p := range kr.ApplyPolicies {
		row.Policies = append(row.Policies, policyOf(p, cat))
		if e := cat.Entry(p); i == 0 && e != nil {
			row.AuthType = e.AuthType
		}
	}
	for _, name := range slices.Sorted(maps.Keys(kr.Fields)) {
		row.Fields = append(row.Fields, fieldRow{Name: name, Value: fieldText(kr.Fields[name])})
	}
	return row
}

// fieldText writes a key request field's value: fields are free JSON.
func fieldText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// needsJWTMaterial reports whether approving row's request needs JWT
// material it lacks.
func (c *Console) needsJWTMaterial(row requestRow) bool {
	return row.AuthType == keylens.AuthJWT && !row.HasJWTMaterial && !c.CentralJWT
}

type approveData struct {
	Request   requestRow
	JWTSecret string
}

// GET /admin/requests/{id}/approve: for a jwt request without material,
// the form that adds it (the HMAC secret or PEM public key its developer
// signs or verifies with) and approves.
func (c *Console) approvePage(w http.ResponseWriter, r *http.Request) {
	row, _, err := c.pendingRequest(r)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "request_approve", view{Title: "Approve key request", Nav: "requests", Data: approveData{Request: row}})
}

// pendingRequest loads the request the path names, as a row.
func (c *Console) pendingRequest(r *http.Request) (requestRow, *keylens.KeyRequest, error) {
	ctx := r.Context()
	kr, err := c.Keys.FindKeyRequestByID(ctx, r.PathValue("id"))
	if err != nil {
		return requestRow{}, nil, err
	}
	cat, err := c.Catalogue.Catalogue(ctx)
	if err != nil {
		return requestRow{}, nil, err
	}
	row := requestRowOf(kr, cat)
	row.NeedsJWTMaterial = c.needsJWTMaterial(row)
	return row, kr, nil
}

// POST /admin/requests/{id}/approve: issue what the request's catalogue
// entry names, and show it once. A jwt request without material takes it
// from the form (jwt_secret), checked by the rule the API applies
// (keylens.ParseJWTMaterialOrCentral), and stored with the request before
// approval; a form without it, or with material the rule refuses, is shown
// again with the reason.
func (c *Console) approveRequest(w http.ResponseWriter, r *http.Request) {
	row, kr, err := c.pendingRequest(r)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	if row.NeedsJWTMaterial && !kr.Approved {
		secret := strings.TrimSpace(r.PostFormValue("jwt_secret"))
		if _, _, err := keylens.ParseJWTMaterialOrCentral(secret, "", c.CentralJWT); err != nil {
			c.render(w, r, http.StatusBadRequest, "request_approve", view{Title: "Approve key request", Nav: "requests",
				Error: keylens.ErrorMessage(err), Data: approveData{Request: row, JWTSecret: secret}})
			return
		}
		kr.JWTSecret = secret
		if err := c.Keys.UpdateKeyRequest(r.Context(), kr.ID, kr); err != nil {
			c.errorPage(w, r, err)
			return
		}
	}
	a, err := c.Keys.ApproveKeyRequest(r.Context(), kr.ID)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	dev := kr.PortalDeveloper
	if dev == nil {
		dev = &keylens.Developer{ID: kr.ByUser}
	}
	c.showOnce(w, r, dev, a, kr.ApplyPolicies)
}

// POST /admin/requests/{id}/reject: a pending request is deleted, as Tyk
// rejects one; nothing was issued.
func (c *Console) rejectRequest(w http.ResponseWriter, r *http.Request) {
	kr, err := c.Keys.FindKeyRequestByID(r.Context(), r.PathValue("id"))
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	if kr.Approved {
		c.errorPage(w, r, keylens.Errorf(keylens.ECONFLICT, "This request is approved already: revoke its key from the developer's profile instead."))
		return
	}
	if err := c.Keys.DeleteKeyRequest(r.Context(), kr.ID); err != nil {
		c.errorPage(w, r, err)
		return
	}
	redirect(w, r, Prefix+"requests", "rejected")
}
