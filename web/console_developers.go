package web

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
)

// developersPerPage is the Developers list's page size.
const developersPerPage = 20

type developersData struct {
	Query     string
	Rows      []developerRow
	Total     int
	Page      pager
	NoneAtAll bool
}

type developerRow struct {
	ID, Email, Name string
	Created         time.Time
	Inactive        bool
	Keys            int
}

// pager links the pages of a list.
type pager struct {
	Page, Pages int
	Prev, Next  string // URLs, "" at either end
}

func newPager(page, total, size int, link func(p int) string) pager {
	pages := max(1, (total+size-1)/size)
	p := pager{Page: page, Pages: pages}
	if page > 1 {
		p.Prev = link(min(page-1, pages))
	}
	if page < pages {
		p.Next = link(page + 1)
	}
	return p
}

// pageParam reads ?p= (from 1); anything else is page 1. Pages past the
// end are empty, never an error, and never overflow an offset.
func pageParam(r *http.Request) int {
	p, err := strconv.Atoi(r.URL.Query().Get("p"))
	if err != nil || p < 1 {
		return 1
	}
	return min(p, 1<<20)
}

// GET /admin/developers?q=&p=: the developers, oldest first, searched by
// email in SQL.
func (c *Console) developersPage(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if strings.ContainsFunc(q, unicode.IsControl) || !utf8.ValidString(q) || len(q) > keylens.MaxEmailLength {
		c.errorPage(w, r, keylens.Errorf(keylens.EINVALID, "Search for part of an email address."))
		return
	}
	page := pageParam(r)
	devs, total, err := c.Developers.FindDevelopers(r.Context(), keylens.DeveloperFilter{EmailContains: q,
		Offset: (page - 1) * developersPerPage, Limit: developersPerPage})
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	d := developersData{Query: q, Total: total, NoneAtAll: total == 0 && q == ""}
	for _, dev := range devs {
		d.Rows = append(d.Rows, developerRow{ID: dev.ID, Email: dev.Email, Name: displayName(dev), Created: dev.DateCreated,
			Inactive: dev.Inactive, Keys: len(dev.Keys)})
	}
	d.Page = newPager(page, total, developersPerPage, func(p int) string {
		v := url.Values{"p": {strconv.Itoa(p)}}
		if q != "" {
			v.Set("q", q)
		}
		return Prefix + "developers?" + v.Encode()
	})
	c.render(w, r, http.StatusOK, "developers", view{Title: "Developers", Nav: "developers", Flash: c.flash(r), Data: d})
}

// displayName is a developer's name from the usual sign-up fields, if any.
func displayName(d *keylens.Developer) string {
	for _, f := range []string{"Name", "name", "Full name", "First name"} {
		if v := strings.TrimSpace(d.Fields[f]); v != "" {
			return v
		}
	}
	return ""
}

// fieldRow is one custom field in a form or a profile.
type fieldRow struct {
	Name, Value string
	SignUp      bool // named by the portal configuration's sign-up fields
}

// fieldRows lists the sign-up fields first, in the configuration's order,
// then the developer's other fields by name, then blank rows for new ones.
func fieldRows(signup []string, fields map[string]string, blanks int) []fieldRow {
	var rows []fieldRow
	seen := map[string]bool{}
	for _, name := range signup {
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		rows = append(rows, fieldRow{Name: name, Value: fields[name], SignUp: true})
	}
	var other []string
	for name := range fields {
		if !seen[name] {
			other = append(other, name)
		}
	}
	slices.Sort(other)
	for _, name := range other {
		rows = append(rows, fieldRow{Name: name, Value: fields[name]})
	}
	for range blanks {
		rows = append(rows, fieldRow{})
	}
	return rows
}

// formFields reads the field rows of a form (field_name / field_value
// pairs): a row without a name, or with an empty value, is no field.
func formFields(r *http.Request) (map[string]string, error) {
	names, values := r.PostForm["field_name"], r.PostForm["field_value"]
	if len(names) != len(values) {
		return nil, keylens.Errorf(keylens.EINVALID, "The custom fields were sent incomplete.")
	}
	out := map[string]string{}
	for i, name := range names {
		name, v := strings.TrimSpace(name), strings.TrimSpace(values[i])
		if name == "" || v == "" {
			continue
		}
		if _, dup := out[name]; dup {
			return nil, keylens.Errorf(keylens.EINVALID, "The field %q is named twice.", name)
		}
		out[name] = v
	}
	return out, nil
}

type developerFormData struct {
	ID, Email string
	Fields    []fieldRow
	Inactive  bool
}

// GET /admin/developers/new: Add Developer.
func (c *Console) newDeveloperPage(w http.ResponseWriter, r *http.Request) {
	cfg, err := c.Catalogue.PortalConfig(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "developer_new", view{Title: "Add Developer", Nav: "developers",
		Data: developerFormData{Fields: fieldRows(cfg.SignupFields, nil, 3)}})
}

// POST /admin/developers
func (c *Console) createDeveloper(w http.ResponseWriter, r *http.Request) {
	fields, err := formFields(r)
	d := &keylens.Developer{Email: formValue(r, "email"), Password: r.PostFormValue("password"), Fields: fields}
	if err == nil {
		err = c.Developers.CreateDeveloper(r.Context(), d)
	}
	if err != nil {
		if !formError(err) {
			c.errorPage(w, r, err)
			return
		}
		cfg, cerr := c.Catalogue.PortalConfig(r.Context())
		if cerr != nil {
			c.errorPage(w, r, cerr)
			return
		}
		c.render(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), "developer_new", view{Title: "Add Developer", Nav: "developers",
			Error: keylens.ErrorMessage(err), Data: developerFormData{Email: d.Email, Fields: fieldRows(cfg.SignupFields, fields, 3)}})
		return
	}
	redirect(w, r, Prefix+"developers/"+d.ID, "developer-added")
}

// formError reports an error a form answers by showing itself again, with
// the message: the input's fault, not the server's.
func formError(err error) bool {
	switch keylens.ErrorCode(err) {
	case keylens.EINVALID, keylens.ECONFLICT:
		return true
	}
	return false
}

// developer loads the developer the path names, answering the error page
// when it cannot.
func (c *Console) developer(w http.ResponseWriter, r *http.Request) (*keylens.Developer, bool) {
	d, err := c.Developers.FindDeveloperByID(r.Context(), r.PathValue("id"))
	if err != nil {
		c.errorPage(w, r, err)
		return nil, false
	}
	return d, true
}

type profileData struct {
	Dev     *keylens.Developer
	Avatar  avatar
	Fields  []fieldRow
	Usage   *usage
	Keys    []keyRow
	Clients []clientRow
	// KeysFlash and ClientsFlash: the message of a change made from that
	// section, shown in it.
	KeysFlash, ClientsFlash string
}

type avatar struct {
	Initials string
	Gravatar string // URL; "" when Gravatar is off
}

// GET /admin/developers/{id}: the profile: overview, Developer Usage,
// Developer Keys and Developer OAuth Clients.
func (c *Console) profilePage(w http.ResponseWriter, r *http.Request) {
	dev, ok := c.developer(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	cfg, err := c.Catalogue.PortalConfig(ctx)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	cat, err := c.Catalogue.Catalogue(ctx)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	keys, err := c.Keys.FindDeveloperKeys(ctx, dev.ID)
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	hashes := make([]string, 0, len(keys))
	d := profileData{Dev: dev, Avatar: c.avatarOf(dev), Fields: fieldRows(cfg.SignupFields, dev.Fields, 0)}
	for _, k := range keys {
		hashes = append(hashes, k.Hash)
		d.Keys = append(d.Keys, keyRowOf(k, cat))
	}
	if d.Usage, err = loadUsage(ctx, c.Hits, c.Now(), r, hashes, "Hits, successes and errors per day of all "+dev.Email+"'s keys", false); err != nil {
		c.errorPage(w, r, err)
		return
	}
	for _, pol := range slices.Sorted(maps.Keys(dev.OAuthClients)) {
		for _, cl := range dev.OAuthClients[pol] {
			d.Clients = append(d.Clients, clientRow{ClientID: cl.ClientID, AppDescription: cl.AppDescription,
				RedirectURI: cl.RedirectURI, Policy: policyOf(pol, cat), Created: cl.DateCreated})
		}
	}
	// A change to a key or an OAuth client comes back to its section (the
	// redirect's #keys or #oauth), scrolled to the top of the window: its
	// message is shown there, not at the top of the page, out of view.
	flash := c.flash(r)
	switch r.URL.Query().Get("done") {
	case "policy-changed", "quota-reset", "revoked":
		d.KeysFlash, flash = flash, ""
	case "client-deleted":
		d.ClientsFlash, flash = flash, ""
	}
	c.render(w, r, http.StatusOK, "profile", view{Title: dev.Email, Nav: "developers", Flash: flash, Data: d})
}

// avatarOf is a developer's avatar: the initials of their name (or
// email), and their Gravatar when enabled. Gravatar is asked for a 404 when
// it has no image, so the initials beneath show through.
func (c *Console) avatarOf(d *keylens.Developer) avatar {
	a := avatar{Initials: initials(displayName(d), d.Email)}
	if c.Gravatar {
		sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(d.Email))))
		a.Gravatar = gravatarOrigin + "/avatar/" + hex.EncodeToString(sum[:]) + "?s=160&d=404"
	}
	return a
}

func initials(name, email string) string {
	var out []rune
	words := strings.Fields(name)
	if len(words) == 0 {
		local, _, _ := strings.Cut(email, "@")
		words = strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '+' })
	}
	for _, w := range words {
		if r, _ := utf8.DecodeRuneInString(w); unicode.IsLetter(r) || unicode.IsDigit(r) {
			out = append(out, unicode.ToUpper(r))
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}

// GET /admin/developers/{id}/edit: Edit profile.
func (c *Console) editPage(w http.ResponseWriter, r *http.Request) {
	dev, ok := c.developer(w, r)
	if !ok {
		return
	}
	c.renderEdit(w, r, http.StatusOK, dev.ID, dev.Email, dev.Fields, dev.Inactive, "")
}

func (c *Console) renderEdit(w http.ResponseWriter, r *http.Request, status int, id, email string, fields map[string]string, inactive bool, errMsg string) {
	cfg, err := c.Catalogue.PortalConfig(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, status, "edit", view{Title: "Edit profile", Nav: "developers", Error: errMsg,
		Data: developerFormData{ID: id, Email: email, Fields: fieldRows(cfg.SignupFields, fields, 3), Inactive: inactive}})
}

// POST /admin/developers/{id}/edit: email, fields and, optionally, a new
// password, changed in one transaction with the rest kept.
func (c *Console) saveProfile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	email := formValue(r, "email")
	fields, err := formFields(r)
	if err == nil {
		_, err = c.Developers.PatchDeveloper(r.Context(), id, keylens.DeveloperPatch{Email: &email, Fields: fields,
			Password: r.PostFormValue("password")})
	}
	if err != nil {
		if !formError(err) {
			c.errorPage(w, r, err)
			return
		}
		cur, ferr := c.Developers.FindDeveloperByID(r.Context(), id)
		if ferr != nil {
			c.errorPage(w, r, ferr)
			return
		}
		c.renderEdit(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), id, email, fields, cur.Inactive, keylens.ErrorMessage(err))
		return
	}
	redirect(w, r, Prefix+"developers/"+id, "profile-saved")
}

// POST /admin/developers/{id}/status: activate or deactivate.
func (c *Console) setStatus(w http.ResponseWriter, r *http.Request) {
	var inactive bool
	switch r.PostFormValue("status") {
	case "inactive":
		inactive = true
	case "active":
	default:
		c.errorPage(w, r, keylens.Errorf(keylens.EINVALID, "Choose active or inactive."))
		return
	}
	id := r.PathValue("id")
	if _, err := c.Developers.PatchDeveloper(r.Context(), id, keylens.DeveloperPatch{Inactive: &inactive}); err != nil {
		c.errorPage(w, r, err)
		return
	}
	msg := "activated"
	if inactive {
		msg = "deactivated"
	}
	redirect(w, r, Prefix+"developers/"+id, msg)
}

// confirmData is a confirmation page: what will happen, and the form that
// does it.
type confirmData struct {
	Heading, Text string
	Action        string // the form's URL
	Button        string
	Cancel        string // where "Cancel" goes
}

// GET /admin/developers/{id}/delete
func (c *Console) deleteDeveloperPage(w http.ResponseWriter, r *http.Request) {
	dev, ok := c.developer(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "confirm", view{Title: "Delete developer", Nav: "developers", Data: confirmData{
		Heading: "Delete " + dev.Email + "?",
		Text: "The developer, their " + strconv.Itoa(len(dev.Keys)) + " keys and their OAuth clients are deleted. " +
			"Their keys stop working at once. This cannot be undone.",
		Action: Prefix + "developers/" + dev.ID + "/delete", Button: "Delete developer", Cancel: Prefix + "developers/" + dev.ID + "/edit"}})
}

// POST /admin/developers/{id}/delete
func (c *Console) deleteDeveloper(w http.ResponseWriter, r *http.Request) {
	if err := c.Developers.DeleteDeveloper(r.Context(), r.PathValue("id")); err != nil {
		c.errorPage(w, r, err)
		return
	}
	redirect(w, r, Prefix+"developers", "developer-deleted")
}
