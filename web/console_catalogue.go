package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
)

// catalogueVersion fingerprints a catalogue: a form carries the version it
// was drawn from, and saving over a catalogue changed since is refused
// rather than undoing someone else's change.
func catalogueVersion(c *keylens.Catalogue) string {
	b, _ := json.Marshal(c.APIs)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

var errCatalogueChanged = keylens.Errorf(keylens.ECONFLICT,
	"The catalogue changed since this form was opened (another admin, or the API). Nothing was saved: open it again.")

type catalogueData struct {
	Entries []keylens.CatalogueEntry
	Version string
}

// GET /admin/catalogue
func (c *Console) cataloguePage(w http.ResponseWriter, r *http.Request) {
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "catalogue", view{Title: "Catalogue", Nav: "catalogue", Flash: c.flash(r),
		Data: catalogueData{Entries: cat.APIs, Version: catalogueVersion(cat)}})
}

type entryData struct {
	Entry     keylens.CatalogueEntry
	Original  string // the policy id the entry had; "" for a new entry
	Version   string
	AuthTypes []string
}

var authTypes = []string{keylens.AuthToken, keylens.AuthBasic, keylens.AuthOAuth, keylens.AuthJWT}

// GET /admin/catalogue/new and /admin/catalogue/edit?policy=
func (c *Console) entryPage(w http.ResponseWriter, r *http.Request) {
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	d := entryData{Version: catalogueVersion(cat), AuthTypes: authTypes, Entry: keylens.CatalogueEntry{AuthType: keylens.AuthToken, Show: true}}
	title := "Add catalogue entry"
	if strings.HasSuffix(r.URL.Path, "/edit") {
		e := cat.Entry(r.URL.Query().Get("policy"))
		if e == nil {
			c.errorPage(w, r, keylens.Errorf(keylens.ENOTFOUND, "No catalogue entry publishes that policy."))
			return
		}
		d.Entry, d.Original, title = *e, e.PolicyID, "Edit catalogue entry"
	}
	c.render(w, r, http.StatusOK, "entry", view{Title: title, Nav: "catalogue", Data: d})
}

// POST /admin/catalogue: add an entry, or replace the one whose policy was
// "original"; the rest of the catalogue, and the members the form does not
// show (config, fields, documentation, version, keyless), are kept.
func (c *Console) saveEntry(w http.ResponseWriter, r *http.Request) {
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	original := r.PostFormValue("original")
	var e keylens.CatalogueEntry
	i := -1
	if original != "" {
		i = slices.IndexFunc(cat.APIs, func(x keylens.CatalogueEntry) bool { return x.PolicyID == original })
		if i < 0 {
			c.errorPage(w, r, errCatalogueChanged)
			return
		}
		e = cat.APIs[i]
	}
	e.Name, e.PolicyID, e.APIID = formValue(r, "name"), formValue(r, "policy_id"), formValue(r, "api_id")
	e.AuthType, e.Show = formValue(r, "auth_type"), r.PostFormValue("show") == "on"
	e.ShortDescription, e.LongDescription = formValue(r, "short_description"), strings.TrimSpace(r.PostFormValue("long_description"))
	switch {
	case r.PostFormValue("version") != catalogueVersion(cat):
		err = errCatalogueChanged
	case e.PolicyID == "":
		err = keylens.Errorf(keylens.EINVALID, "An entry needs the policy it publishes.")
	default:
		if i >= 0 {
			cat.APIs[i] = e
		} else {
			cat.APIs = append(cat.APIs, e)
		}
		err = c.Catalogue.PutCatalogue(r.Context(), cat)
	}
	if err != nil {
		if !formError(err) {
			c.errorPage(w, r, err)
			return
		}
		title := "Add catalogue entry"
		if original != "" {
			title = "Edit catalogue entry"
		}
		c.render(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), "entry", view{Title: title, Nav: "catalogue",
			Error: keylens.ErrorMessage(err), Data: entryData{Entry: e, Original: original, Version: r.PostFormValue("version"), AuthTypes: authTypes}})
		return
	}
	redirect(w, r, Prefix+"catalogue", "entry-saved")
}

// POST /admin/catalogue/remove: withdraw the entry of a policy. Keys with
// the policy keep it; the policy shows as "(No Catalog Entry)".
func (c *Console) removeEntry(w http.ResponseWriter, r *http.Request) {
	cat, err := c.Catalogue.Catalogue(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	policy := r.PostFormValue("policy")
	i := slices.IndexFunc(cat.APIs, func(x keylens.CatalogueEntry) bool { return x.PolicyID == policy })
	if i < 0 || r.PostFormValue("version") != catalogueVersion(cat) {
		c.errorPage(w, r, errCatalogueChanged)
		return
	}
	cat.APIs = slices.Delete(cat.APIs, i, i+1)
	if err := c.Catalogue.PutCatalogue(r.Context(), cat); err != nil {
		c.errorPage(w, r, err)
		return
	}
	redirect(w, r, Prefix+"catalogue", "entry-removed")
}

type configData struct {
	RequireKeyApproval bool
	KeyRequestFields   string // one per line
	SignupFields       string
}

// GET /admin/configuration
func (c *Console) configurationPage(w http.ResponseWriter, r *http.Request) {
	cfg, err := c.Catalogue.PortalConfig(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "configuration", view{Title: "Configuration", Nav: "configuration", Flash: c.flash(r),
		Data: configData{RequireKeyApproval: cfg.RequireKeyApproval, KeyRequestFields: strings.Join(cfg.KeyRequestFields, "\n"),
			SignupFields: strings.Join(cfg.SignupFields, "\n")}})
}

// POST /admin/configuration: the typed members; every other member the
// configuration holds (set through the API) is kept.
func (c *Console) saveConfiguration(w http.ResponseWriter, r *http.Request) {
	cfg, err := c.Catalogue.PortalConfig(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	cfg.RequireKeyApproval = r.PostFormValue("require_key_approval") == "on"
	cfg.KeyRequestFields = lines(r.PostFormValue("key_request_fields"))
	cfg.SignupFields = lines(r.PostFormValue("signup_fields"))
	err = keylens.ValidateFieldNames("key request fields", slices.Clone(cfg.KeyRequestFields))
	if err == nil {
		err = keylens.ValidateFieldNames("sign-up fields", slices.Clone(cfg.SignupFields))
	}
	if err == nil {
		err = c.Catalogue.PutPortalConfig(r.Context(), cfg)
	}
	if err != nil {
		if !formError(err) {
			c.errorPage(w, r, err)
			return
		}
		c.render(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), "configuration", view{Title: "Configuration", Nav: "configuration",
			Error: keylens.ErrorMessage(err), Data: configData{RequireKeyApproval: cfg.RequireKeyApproval,
				KeyRequestFields: strings.Join(cfg.KeyRequestFields, "\n"), SignupFields: strings.Join(cfg.SignupFields, "\n")}})
		return
	}
	redirect(w, r, Prefix+"configuration", "config-saved")
}

// lines splits a textarea into its non-blank lines, trimmed, each once.
func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// entryLink is the edit page of the entry of policy.
func entryLink(policy string) string {
	return Prefix + "catalogue/edit?" + url.Values{"policy": {policy}}.Encode()
}
