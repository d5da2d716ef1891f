package web

import (
	"net/http"
	"slices"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
)

// entryChoice is a catalogue entry offered in a policy picker.
type entryChoice struct {
	PolicyID, Name, AuthType string
	Checked                  bool
}

func choices(cat *keylens.Catalogue, checked []string) []entryChoice {
	out := make([]entryChoice, 0, len(cat.APIs))
	for _, e := range cat.APIs {
		name := e.Name
		if name == "" {
			name = e.PolicyID
		}
		out = append(out, entryChoice{PolicyID: e.PolicyID, Name: name, AuthType: e.AuthType, Checked: slices.Contains(checked, e.PolicyID)})
	}
	return out
}

type newKeyData struct {
	Dev          *keylens.Developer
	Entries      []entryChoice
	Fields       []fieldRow // the configuration's key request fields
	RedirectURI  string
	AppDesc      string
	NoCatalogue  bool
	FieldsFilled map[string]string
}

// GET /admin/developers/{id}/keys/new: New Key.
func (c *Console) newKeyPage(w http.ResponseWriter, r *http.Request) {
	dev, ok := c.developer(w, r)
	if !ok {
		return
	}
	c.renderNewKey(w, r, http.StatusOK, dev, nil, nil, "", "", "")
}

func (c *Console) renderNewKey(w http.ResponseWriter, r *http.Request, status int, dev *keylens.Developer,
	checked []string, fields map[string]string, redirectURI, appDesc, errMsg string) {
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	cfg, err := c.Catalogue.PortalConfig(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	d := newKeyData{Dev: dev, Entries: choices(cat, checked), Fields: fieldRows(cfg.KeyRequestFields, nil, 0),
		RedirectURI: redirectURI, AppDesc: appDesc, NoCatalogue: len(cat.APIs) == 0}
	for i := range d.Fields {
		d.Fields[i].Value = fields[d.Fields[i].Name]
	}
	c.render(w, r, status, "key_new", view{Title: "New Key", Nav: "developers", Error: errMsg, Data: d})
}

// POST /admin/developers/{id}/keys: Request Key. Files a key request for
// the developer and approves it (KeyService.IssueKey), then shows what was
// issued, once.
func (c *Console) issueKey(w http.ResponseWriter, r *http.Request) {
	dev, ok := c.developer(w, r)
	if !ok {
		return
	}
	policies := r.PostForm["policy"]
	fields, err := formFields(r)
	redirectURI, appDesc := formValue(r, "redirect_uri"), formValue(r, "app_description")
	anyFields := map[string]any{}
	for k, v := range fields {
		anyFields[k] = v
	}
	if appDesc != "" {
		anyFields["oauth_app_description"] = appDesc
	}
	var a *keylens.Approval
	if err == nil {
		if len(policies) == 0 {
			err = keylens.Errorf(keylens.EINVALID, "Choose at least one policy.")
		} else {
			a, err = c.Keys.IssueKey(r.Context(), dev.ID, &keylens.KeyRequest{ApplyPolicies: policies, Fields: anyFields,
				OAuthInfo: keylens.OAuthInfo{RedirectURI: redirectURI}, JWTSecret: r.PostFormValue("jwt_secret")})
		}
	}
	if err != nil {
		if !formError(err) {
			c.errorPage(w, r, err)
			return
		}
		c.renderNewKey(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), dev, policies, fields, redirectURI, appDesc, keylens.ErrorMessage(err))
		return
	}
	c.showOnce(w, r, dev, a, policies)
}

// devKey loads the developer and the key the path names; the key must be
// the developer's.
func (c *Console) devKey(w http.ResponseWriter, r *http.Request) (*keylens.Developer, *keylens.Key, bool) {
	dev, ok := c.developer(w, r)
	if !ok {
		return nil, nil, false
	}
	k, err := c.Keys.FindKey(r.Context(), r.PathValue("hash"))
	if err == nil && k.DeveloperID != dev.ID {
		err = keylens.Errorf(keylens.ENOTFOUND, "Key not found")
	}
	if err != nil {
		c.errorPage(w, r, err)
		return nil, nil, false
	}
	return dev, k, true
}

type keyData struct {
	Dev      *keylens.Developer
	Key      keyRow
	Replaces *keyRow // the key this one replaced, while in its grace
	Usage    *usage
}

// GET /admin/developers/{id}/keys/{hash}: Key analytics: the key's hits,
// successes and errors per day, and its status codes.
func (c *Console) keyPage(w http.ResponseWriter, r *http.Request) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	u, err := loadUsage(r.Context(), c.Hits, c.Now(), r, []string{k.Hash}, "Hits, successes and errors per day of key "+shortHash(k.Hash), true)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	keys, err := c.Keys.FindDeveloperKeys(r.Context(), dev.ID)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "key", view{Title: "Key analytics", Nav: "developers",
		Data: keyData{Dev: dev, Key: keyRowOf(k, cat), Replaces: predecessorOf(k, keys, cat), Usage: u}})
}

type policyFormData struct {
	Dev      *keylens.Developer
	Key      keyRow
	Entries  []entryChoice
	Orphans  []string // current policies no catalogue entry publishes
	NoneLeft bool
}

// GET /admin/developers/{id}/keys/{hash}/policy: Change Policy.
func (c *Console) changePolicyPage(w http.ResponseWriter, r *http.Request) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	c.renderChangePolicy(w, r, http.StatusOK, dev, k, k.Policies, "")
}

func (c *Console) renderChangePolicy(w http.ResponseWriter, r *http.Request, status int, dev *keylens.Developer, k *keylens.Key, checked []string, errMsg string) {
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	d := policyFormData{Dev: dev, Key: keyRowOf(k, cat), Entries: choices(cat, checked)}
	for _, p := range k.Policies {
		if cat.Entry(p) == nil {
			d.Orphans = append(d.Orphans, p)
		}
	}
	c.render(w, r, status, "key_policy", view{Title: "Change Policy", Nav: "developers", Error: errMsg, Data: d})
}

// POST /admin/developers/{id}/keys/{hash}/policy: CHANGE KEY POLICY.
func (c *Console) changePolicy(w http.ResponseWriter, r *http.Request) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	policies := r.PostForm["policy"]
	var err error
	if len(policies) == 0 {
		err = keylens.Errorf(keylens.EINVALID, "A key needs at least one policy: to take every policy away, revoke the key.")
	} else {
		err = c.Keys.SetKeyPolicies(r.Context(), dev.ID, k.Hash, policies)
	}
	if err != nil {
		if !formError(err) {
			c.errorPage(w, r, err)
			return
		}
		c.renderChangePolicy(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), dev, k, policies, keylens.ErrorMessage(err))
		return
	}
	redirect(w, r, Prefix+"developers/"+dev.ID+"#keys", "policy-changed")
}

// POST /admin/developers/{id}/keys/{hash}/reset_quota
func (c *Console) resetQuota(w http.ResponseWriter, r *http.Request) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	if err := c.Keys.ResetKeyQuota(r.Context(), dev.ID, k.Hash); err != nil {
		c.errorPage(w, r, err)
		return
	}
	redirect(w, r, Prefix+"developers/"+dev.ID+"#keys", "quota-reset")
}

type rotateData struct {
	Dev    *keylens.Developer
	Key    keyRow
	Graces []graceChoice
}

// GET /admin/developers/{id}/keys/{hash}/rotate: Rotate, the form.
func (c *Console) rotatePage(w http.ResponseWriter, r *http.Request) {
	c.showRotate(w, r, http.StatusOK, "")
}

func (c *Console) showRotate(w http.ResponseWriter, r *http.Request, status int, problem string) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, status, "key_rotate", view{Title: "Rotate key", Nav: "developers", Error: problem,
		Data: rotateData{Dev: dev, Key: keyRowOf(k, cat), Graces: graceChoices(c.MaxRotationGrace)}})
}

// POST /admin/developers/{id}/keys/{hash}/rotate {grace, jwt_secret}: a
// new key replaces the key, which keeps working for the grace chosen; the
// new one is shown once.
func (c *Console) rotate(w http.ResponseWriter, r *http.Request) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	var rot *keylens.Rotation
	in, err := rotationForm(r, c.MaxRotationGrace)
	if err == nil {
		rot, err = c.Keys.RotateKey(r.Context(), dev.ID, k.Hash, in)
	}
	if err != nil {
		if code := keylens.ErrorCode(err); code == keylens.EINVALID || code == keylens.ECONFLICT || code == keylens.EFORBIDDEN {
			c.showRotate(w, r, rest.HTTPStatus(code), keylens.ErrorMessage(err))
			return
		}
		c.errorPage(w, r, err)
		return
	}
	nonce := c.issued.put(&issuedEntry{session: sessionFrom(r).IDHash, developerID: dev.ID, email: dev.Email,
		approval: &keylens.Approval{RawKey: rot.RawKey, Password: rot.Password, KeyHash: rot.KeyHash},
		authType: k.AuthType, policies: k.Policies, replaces: rot.Replaces, oldExpires: rot.OldKeyExpires}, c.Now())
	http.Redirect(w, r, Prefix+"issued/"+nonce, http.StatusSeeOther)
}

// GET /admin/developers/{id}/keys/{hash}/revoke
func (c *Console) revokePage(w http.ResponseWriter, r *http.Request) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "confirm", view{Title: "Revoke key", Nav: "developers", Data: confirmData{
		Heading: "Revoke key " + shortHash(k.Hash) + " of " + dev.Email + "?",
		Text:    "The key stops working at once, on every gateway keylens answers for. This cannot be undone: the developer needs a new key.",
		Action:  Prefix + "developers/" + dev.ID + "/keys/" + k.Hash + "/revoke", Button: "Revoke key",
		Cancel: Prefix + "developers/" + dev.ID + "#keys"}})
}

// POST /admin/developers/{id}/keys/{hash}/revoke
func (c *Console) revoke(w http.ResponseWriter, r *http.Request) {
	dev, k, ok := c.devKey(w, r)
	if !ok {
		return
	}
	if err := c.Keys.RevokeKey(r.Context(), dev.ID, k.Hash); err != nil {
		c.errorPage(w, r, err)
		return
	}
	redirect(w, r, Prefix+"developers/"+dev.ID+"#keys", "revoked")
}

// devClient loads the developer and the OAuth client the path names.
func (c *Console) devClient(w http.ResponseWriter, r *http.Request) (*keylens.Developer, *keylens.OAuthClient, bool) {
	dev, ok := c.developer(w, r)
	if !ok {
		return nil, nil, false
	}
	id := r.PathValue("client")
	for _, clients := range dev.OAuthClients {
		for i := range clients {
			if clients[i].ClientID == id {
				return dev, &clients[i], true
			}
		}
	}
	c.errorPage(w, r, keylens.Errorf(keylens.ENOTFOUND, "OAuth client not found"))
	return nil, nil, false
}

// GET /admin/developers/{id}/oauth/{client}/delete
func (c *Console) deleteClientPage(w http.ResponseWriter, r *http.Request) {
	dev, cl, ok := c.devClient(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "confirm", view{Title: "Delete OAuth client", Nav: "developers", Data: confirmData{
		Heading: "Delete OAuth client " + cl.ClientID + " of " + dev.Email + "?",
		Text:    "The client can no longer get tokens, and the tokens it holds stop working. This cannot be undone.",
		Action:  Prefix + "developers/" + dev.ID + "/oauth/" + cl.ClientID + "/delete", Button: "Delete OAuth client",
		Cancel: Prefix + "developers/" + dev.ID + "#oauth"}})
}

// POST /admin/developers/{id}/oauth/{client}/delete
func (c *Console) deleteClient(w http.ResponseWriter, r *http.Request) {
	dev, cl, ok := c.devClient(w, r)
	if !ok {
		return
	}
	if err := c.Keys.DeleteOAuthClient(r.Context(), cl.ClientID); err != nil {
		c.errorPage(w, r, err)
		return
	}
	redirect(w, r, Prefix+"developers/"+dev.ID+"#oauth", "client-deleted")
}
