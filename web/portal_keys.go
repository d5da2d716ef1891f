package web

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
)

type portalCatalogueData struct {
	Entries  []keylens.CatalogueEntry
	SignedIn bool
}

// published returns the catalogue entries with show: true, the only ones a
// developer sees or may request.
func (p *Portal) published(ctx context.Context) (*keylens.Catalogue, []keylens.CatalogueEntry, error) {
	cat, err := p.Catalogue.Catalogue(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []keylens.CatalogueEntry
	for _, e := range cat.APIs {
		if e.Show {
			out = append(out, e)
		}
	}
	return cat, out, nil
}

// GET /catalogue (and /): public.
func (p *Portal) cataloguePage(w http.ResponseWriter, r *http.Request) {
	_, entries, err := p.published(r.Context())
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "portal_catalogue", view{Title: "API catalogue", Nav: "catalogue",
		Data: portalCatalogueData{Entries: entries, SignedIn: sessionFrom(r) != nil}})
}

// portalKeyRow is a key on the dashboard, with its last 30 days.
type portalKeyRow struct {
	keyRow
	Hits, Success, Errors int64
}

type pendingRow struct {
	ID       string
	Policies []policyRow
	Created  string
	// NeedsJWTMaterial: a jwt request filed without signing material (by
	// another portal), which an admin must add before approving it.
	NeedsJWTMaterial bool
}

type dashboardData struct {
	Dev      *keylens.Developer
	Name     string
	Reveals  []issuedData
	Keys     []portalKeyRow
	Pending  []pendingRow
	Usage    *usage
	Clients  int
	HasEntry bool
}

// maxPendingShown bounds the pending requests the dashboard lists.
const maxPendingShown = 100

// GET /dashboard: the credentials approved since the last visit (shown
// once), keys with their policies and 30 days' usage, pending requests.
func (p *Portal) dashboardPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	dev, err := p.me(ctx, r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	cat, entries, err := p.published(ctx)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	d := dashboardData{Dev: dev, Name: dev.Fields["Name"], HasEntry: len(entries) > 0}
	for _, cs := range dev.OAuthClients {
		d.Clients += len(cs)
	}
	keys, err := p.Keys.FindDeveloperKeys(ctx, dev.ID)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	hashes := make([]string, 0, len(keys))
	for _, k := range keys {
		hashes = append(hashes, k.Hash)
		row := portalKeyRow{keyRow: keyRowOf(k, cat)}
		u, err := loadUsage(ctx, p.Hits, p.Now(), r, []string{k.Hash}, "", false)
		if err != nil {
			p.errorPage(w, r, err)
			return
		}
		row.Hits, row.Success, row.Errors = u.Chart.Hits, u.Chart.Success, u.Chart.Errors
		d.Keys = append(d.Keys, row)
	}
	if d.Usage, err = loadUsage(ctx, p.Hits, p.Now(), r, hashes, "Hits, successes and errors per day of all your keys", false); err != nil {
		p.errorPage(w, r, err)
		return
	}
	pending := false
	reqs, _, err := p.Keys.FindKeyRequests(ctx, keylens.KeyRequestFilter{Approved: &pending, ByUser: dev.ID, Limit: maxPendingShown})
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	for _, kr := range reqs {
		row := pendingRow{ID: kr.ID, Created: day(kr.DateCreated)}
		for _, pol := range kr.ApplyPolicies {
			row.Policies = append(row.Policies, policyOf(pol, cat))
		}
		if len(kr.ApplyPolicies) > 0 {
			if e := cat.Entry(kr.ApplyPolicies[0]); e != nil && e.AuthType == keylens.AuthJWT {
				_, _, err := keylens.ParseJWTMaterialOrCentral(kr.JWTSecret, kr.Certificate, p.CentralJWT)
				row.NeedsJWTMaterial = errors.Is(err, keylens.ErrNoJWTMaterial)
			}
		}
		d.Pending = append(d.Pending, row)
	}
	// Last, once everything else has been read: what approvals issued
	// since the last visit, which this page shows once.
	reveals, err := p.Accounts.TakeReveals(ctx, dev.ID)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	for i, rv := range reveals {
		d.Reveals = append(d.Reveals, issuedData{AuthType: rv.AuthType, Policies: policyNames(rv.Policies, cat), RawKey: rv.RawKey,
			Password: rv.Password, KeyHash: rv.KeyHash, Client: rv.OAuthClient, Slot: "-" + strconv.Itoa(i+1)})
	}
	p.render(w, r, http.StatusOK, "portal_dashboard", view{Title: "Dashboard", Nav: "dashboard", Flash: p.flash(r), Data: d})
}

type keyRequestData struct {
	Entry            keylens.CatalogueEntry
	Fields           []field
	JWTSecret        string
	RedirectURI      string
	AppDesc, UseCase string
	Approval         bool
	CentralJWT       bool // a jwt request may come without material
	// AsksUseCase: the configuration's key request fields ask for a use
	// case, which an OAuth client's use case is then taken from, rather
	// than asked twice.
	AsksUseCase bool
}

// useCaseField is the key request field, among fields, that asks for the
// use case ("Use case", in any case); "" when none does.
func useCaseField(fields []field) string {
	for _, f := range fields {
		if strings.EqualFold(f.Name, "use case") {
			return f.Name
		}
	}
	return ""
}

// requestable returns the published entry of policy; ENOTFOUND for a
// policy that is not published (hidden entries cannot be requested).
func (p *Portal) requestable(ctx context.Context, policy string) (*keylens.CatalogueEntry, *keylens.PortalConfig, error) {
	_, entries, err := p.published(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := p.Catalogue.PortalConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	for i := range entries {
		if entries[i].PolicyID == policy {
			return &entries[i], cfg, nil
		}
	}
	return nil, nil, keylens.Errorf(keylens.ENOTFOUND, "There is no such API in the catalogue.")
}

func keyRequestFields(cfg *keylens.PortalConfig, values map[string]string) []field {
	var out []field
	for _, n := range cfg.KeyRequestFields {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, field{Name: n, Value: values[n]})
		}
	}
	return out
}

// GET /keys/new?policy=…
func (p *Portal) requestPage(w http.ResponseWriter, r *http.Request) {
	e, cfg, err := p.requestable(r.Context(), r.URL.Query().Get("policy"))
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	fields := keyRequestFields(cfg, nil)
	p.render(w, r, http.StatusOK, "portal_request", view{Title: "Request a key", Nav: "catalogue",
		Data: keyRequestData{Entry: *e, Fields: fields, Approval: cfg.RequireKeyApproval, CentralJWT: p.CentralJWT,
			AsksUseCase: useCaseField(fields) != ""}})
}

// POST /keys: a key request for one published policy, by the signed-in
// developer (never anyone else: by_user is the session's). Without
// required approval the key is issued at once and shown once; with it,
// the request waits for an admin, and what approval issues is kept
// (sealed) for the developer's next visit.
func (p *Portal) requestKey(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r)
	e, cfg, err := p.requestable(r.Context(), formValue(r, "policy"))
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	values := postedFields(r, keyRequestFields(cfg, nil))
	d := keyRequestData{Entry: *e, Fields: keyRequestFields(cfg, values), Approval: cfg.RequireKeyApproval, CentralJWT: p.CentralJWT,
		RedirectURI: formValue(r, "redirect_uri"), AppDesc: formValue(r, "app_description"), UseCase: formValue(r, "use_case")}
	if name := useCaseField(d.Fields); name != "" {
		d.AsksUseCase, d.UseCase = true, values[name]
	}
	kr := &keylens.KeyRequest{ByUser: s.DeveloperID, ApplyPolicies: []string{e.PolicyID}, ForAPI: e.APIID, Fields: map[string]any{}}
	for n, v := range values {
		if v != "" {
			kr.Fields[n] = v
		}
	}
	switch e.AuthType {
	case keylens.AuthJWT:
		kr.JWTSecret = strings.TrimSpace(r.PostFormValue("jwt_secret"))
		d.JWTSecret = kr.JWTSecret
		_, _, err = keylens.ParseJWTMaterialOrCentral(kr.JWTSecret, "", p.CentralJWT)
	case keylens.AuthOAuth:
		kr.OAuthInfo.RedirectURI = d.RedirectURI
		if d.AppDesc != "" {
			kr.Fields["oauth_app_description"] = d.AppDesc
		}
		if d.UseCase != "" {
			kr.Fields["oauth_use_case"] = d.UseCase
		}
		err = keylens.ValidateRedirectURI(d.RedirectURI)
	}
	var a *keylens.Approval
	if err == nil {
		if cfg.RequireKeyApproval {
			kr.ShowOnce = true
			err = p.Keys.CreateKeyRequest(r.Context(), kr)
		} else {
			a, err = p.Keys.IssueKey(r.Context(), s.DeveloperID, kr)
		}
	}
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EINVALID:
		p.render(w, r, http.StatusBadRequest, "portal_request", view{Title: "Request a key", Nav: "catalogue",
			Error: keylens.ErrorMessage(err), Data: d})
		return
	default:
		p.errorPage(w, r, err)
		return
	}
	if a == nil {
		redirect(w, r, "/dashboard", "requested")
		return
	}
	nonce := p.issued.put(&issuedEntry{session: s.IDHash, developerID: s.DeveloperID, email: s.Email,
		approval: a, authType: e.AuthType, policies: kr.ApplyPolicies}, p.Now())
	http.Redirect(w, r, "/issued/"+nonce, http.StatusSeeOther)
}

// GET /issued/{nonce}: a key issued at once, shown once.
func (p *Portal) issuedPage(w http.ResponseWriter, r *http.Request) {
	e := p.issued.take(r.PathValue("nonce"), sessionFrom(r).IDHash, p.Now())
	if e == nil {
		p.render(w, r, http.StatusGone, "portal_issued", view{Title: "Your new key", Nav: "dashboard", Data: issuedData{Gone: true}})
		return
	}
	cat, err := p.Catalogue.Catalogue(r.Context())
	if err != nil {
		cat = &keylens.Catalogue{} // the key is shown all the same, under its policy ids
	}
	d := issuedData{AuthType: e.authType, Policies: policyNames(e.policies, cat), RawKey: e.approval.RawKey, Password: e.approval.Password,
		KeyHash: e.approval.KeyHash, Client: e.approval.OAuthClient, Replaces: e.replaces, OldExpires: e.oldExpires}
	p.render(w, r, http.StatusOK, "portal_issued", view{Title: "Your new key", Nav: "dashboard", Data: d})
}

type portalKeyData struct {
	Key      keyRow
	Replaces *keyRow // the key this one replaced, while in its grace
	Usage    *usage
	Graces   []graceChoice // the rotation form's choices
	// CentralJWT: a jwt key may be rotated without material of its own.
	CentralJWT bool
}

// GET /keys/{hash}: one of the developer's keys, its usage, and the form
// that rotates it.
func (p *Portal) keyPage(w http.ResponseWriter, r *http.Request) {
	p.showKey(w, r, http.StatusOK, "")
}

// myKey is the signed-in developer's key the path names; notMine for any
// other.
func (p *Portal) myKey(r *http.Request) (*keylens.Key, error) {
	k, err := p.Keys.FindKey(r.Context(), r.PathValue("hash"))
	if keylens.ErrorCode(err) == keylens.ENOTFOUND || (err == nil && k.DeveloperID != sessionFrom(r).DeveloperID) {
		return nil, notMine
	}
	return k, err
}

func (p *Portal) showKey(w http.ResponseWriter, r *http.Request, status int, problem string) {
	ctx := r.Context()
	k, err := p.myKey(r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	cat, err := p.Catalogue.Catalogue(ctx)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	d := portalKeyData{Key: keyRowOf(k, cat), Graces: graceChoices(p.MaxRotationGrace), CentralJWT: p.CentralJWT}
	mine, err := p.Keys.FindDeveloperKeys(ctx, k.DeveloperID)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	d.Replaces = predecessorOf(k, mine, cat)
	if d.Usage, err = loadUsage(ctx, p.Hits, p.Now(), r, []string{k.Hash}, "Hits, successes and errors per day of key "+shortHash(k.Hash), true); err != nil {
		p.errorPage(w, r, err)
		return
	}
	p.render(w, r, status, "portal_key", view{Title: "Key " + shortHash(k.Hash), Nav: "dashboard", Error: problem, Data: d})
}

// POST /keys/{hash}/rotate {grace, jwt_secret}: the developer replaces
// one of their keys. The new key is shown once; the old one keeps working
// for the grace chosen, beside it.
func (p *Portal) rotateKey(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r)
	k, err := p.myKey(r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	var rot *keylens.Rotation
	in, err := rotationForm(r, p.MaxRotationGrace)
	if err == nil {
		rot, err = p.Keys.RotateKey(r.Context(), s.DeveloperID, k.Hash, in)
	}
	switch code := keylens.ErrorCode(err); code {
	case "":
	case keylens.EINVALID, keylens.ECONFLICT, keylens.EFORBIDDEN:
		p.showKey(w, r, rest.HTTPStatus(code), keylens.ErrorMessage(err))
		return
	default:
		p.errorPage(w, r, err)
		return
	}
	nonce := p.issued.put(&issuedEntry{session: s.IDHash, developerID: s.DeveloperID, email: s.Email,
		approval: &keylens.Approval{RawKey: rot.RawKey, Password: rot.Password, KeyHash: rot.KeyHash},
		authType: k.AuthType, policies: k.Policies, replaces: rot.Replaces, oldExpires: rot.OldKeyExpires}, p.Now())
	http.Redirect(w, r, "/issued/"+nonce, http.StatusSeeOther)
}

// GET /oauth-clients: the developer's OAuth clients.
func (p *Portal) oauthPage(w http.ResponseWriter, r *http.Request) {
	dev, err := p.me(r.Context(), r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	cat, err := p.Catalogue.Catalogue(r.Context())
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	var rows []clientRow
	for _, pol := range slices.Sorted(maps.Keys(dev.OAuthClients)) {
		for _, cl := range dev.OAuthClients[pol] {
			rows = append(rows, clientRow{ClientID: cl.ClientID, AppDescription: cl.AppDescription,
				RedirectURI: cl.RedirectURI, Policy: policyOf(pol, cat), Created: cl.DateCreated})
		}
	}
	p.render(w, r, http.StatusOK, "portal_oauth", view{Title: "OAuth clients", Nav: "oauth", Data: rows})
}

// GET /oauth-clients/{id}: one of the developer's OAuth clients, with
// its revocations.
func (p *Portal) clientPage(w http.ResponseWriter, r *http.Request) {
	p.showClient(w, r, http.StatusOK, "")
}

func (p *Portal) showClient(w http.ResponseWriter, r *http.Request, status int, problem string) {
	cl, pol, err := p.myClient(r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	cat, err := p.Catalogue.Catalogue(r.Context())
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	p.render(w, r, status, "portal_client", view{Title: "OAuth client", Nav: "oauth", Error: problem, Flash: p.flash(r),
		Data: portalClientData{clientRow: clientRow{ClientID: cl.ClientID, AppDescription: cl.AppDescription, RedirectURI: cl.RedirectURI,
			Policy: policyOf(pol, cat), Created: cl.DateCreated}, Graces: graceChoices(p.MaxRotationGrace)}})
}

type portalClientData struct {
	clientRow
	Graces []graceChoice // the secret rotation form's choices
}

// POST /oauth-clients/{id}/rotate {grace}: the developer gives their
// client a new secret, shown once; the old one keeps working for the
// grace chosen.
func (p *Portal) rotateSecret(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r)
	cl, pol, err := p.myClient(r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	var rot *keylens.SecretRotation
	in, err := rotationForm(r, p.MaxRotationGrace)
	if err == nil {
		rot, err = p.Keys.RotateOAuthSecret(r.Context(), s.DeveloperID, cl.ClientID, in.Grace)
	}
	switch code := keylens.ErrorCode(err); code {
	case "":
	case keylens.EINVALID, keylens.ECONFLICT, keylens.EFORBIDDEN:
		p.showClient(w, r, rest.HTTPStatus(code), keylens.ErrorMessage(err))
		return
	default:
		p.errorPage(w, r, err)
		return
	}
	c := *cl
	c.Secret = rot.Secret
	nonce := p.issued.put(&issuedEntry{session: s.IDHash, developerID: s.DeveloperID, email: s.Email,
		approval: &keylens.Approval{OAuthClient: &c, PolicyID: pol}, authType: keylens.AuthOAuth, policies: []string{pol},
		replaces: cl.ClientID, oldExpires: rot.OldSecretExpires}, p.Now())
	http.Redirect(w, r, "/issued/"+nonce, http.StatusSeeOther)
}

// myClient is the signed-in developer's OAuth client the path names, and
// its policy; notMine for any other.
func (p *Portal) myClient(r *http.Request) (*keylens.OAuthClient, string, error) {
	dev, err := p.me(r.Context(), r)
	if err != nil {
		return nil, "", err
	}
	id := r.PathValue("id")
	for pol, cs := range dev.OAuthClients {
		for i := range cs {
			if cs[i].ClientID == id {
				return &cs[i], pol, nil
			}
		}
	}
	return nil, "", notMine
}

// POST /oauth-clients/{id}/revoke {token}: the Tyk Classic Portal API's revocation of one
// token, by the client's developer.
func (p *Portal) revokeToken(w http.ResponseWriter, r *http.Request) {
	cl, _, err := p.myClient(r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" || len(token) > 1024 {
		p.showClient(w, r, http.StatusBadRequest, "Paste the access token to revoke (at most 1,024 characters).")
		return
	}
	if err := p.Revoker.RevokeToken(r.Context(), cl.ClientID, token, "access_token"); err != nil {
		p.errorPage(w, r, err)
		return
	}
	redirect(w, r, "/oauth-clients/"+url.PathEscape(cl.ClientID), "token-revoked")
}

// POST /oauth-clients/{id}/revoke_all: the Tyk Classic Portal API's revocation of every
// token of the client; the developer's session stands for the client's
// secret, which keylens holds.
func (p *Portal) revokeAllTokens(w http.ResponseWriter, r *http.Request) {
	cl, _, err := p.myClient(r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	if err := p.Revoker.RevokeAllTokens(r.Context(), cl.ClientID, cl.Secret); err != nil {
		p.errorPage(w, r, err)
		return
	}
	redirect(w, r, "/oauth-clients/"+url.PathEscape(cl.ClientID), "tokens-revoked")
}

// policyNames names policies as the catalogue does, for developers.
func policyNames(ids []string, cat *keylens.Catalogue) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id
		if p := policyOf(id, cat); p.Name != "" {
			out[i] = p.Name
		}
	}
	return out
}
