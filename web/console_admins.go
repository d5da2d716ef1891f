package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/rest"
)

type adminsData struct {
	Admins []*keylens.Admin
	Self   string // the signed-in admin's id; "" for the admin key
	Email  string // the add form's, when it failed
	MinLen int
}

// GET /admin/admins
func (c *Console) adminsPage(w http.ResponseWriter, r *http.Request) {
	c.renderAdmins(w, r, http.StatusOK, "", "")
}

func (c *Console) renderAdmins(w http.ResponseWriter, r *http.Request, status int, email, errMsg string) {
	all, err := c.Admins.FindAdmins(r.Context())
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	c.render(w, r, status, "admins", view{Title: "Admins", Nav: "admins", Flash: c.flash(r), Error: errMsg,
		Data: adminsData{Admins: all, Self: sessionFrom(r).AdminID, Email: email, MinLen: keylens.MinAdminPasswordLength}})
}

// POST /admin/admins: add an admin account.
func (c *Console) addAdmin(w http.ResponseWriter, r *http.Request) {
	email, pw := formValue(r, "email"), r.PostFormValue("password")
	var err error
	if pw != r.PostFormValue("password_again") {
		err = keylens.Errorf(keylens.EINVALID, "The two passwords differ.")
	} else {
		err = c.Admins.CreateAdmin(r.Context(), &keylens.Admin{Email: email, Password: pw})
	}
	if err != nil {
		if !formError(err) {
			c.errorPage(w, r, err)
			return
		}
		c.renderAdmins(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), email, keylens.ErrorMessage(err))
		return
	}
	redirect(w, r, Prefix+"admins", "admin-added")
}

// notSelf refuses to disable or remove the signed-in admin: the console
// would lock its own user out mid-task.
func (c *Console) notSelf(w http.ResponseWriter, r *http.Request, id string) bool {
	if id == sessionFrom(r).AdminID {
		c.errorPage(w, r, keylens.Errorf(keylens.EINVALID, "You cannot disable or remove your own account: ask another admin, or sign in with the admin key."))
		return false
	}
	return true
}

// POST /admin/admins/{id}/status: disable (ending their sessions) or
// enable.
func (c *Console) setAdminStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !c.notSelf(w, r, id) {
		return
	}
	var disabled bool
	switch r.PostFormValue("status") {
	case "disabled":
		disabled = true
	case "enabled":
	default:
		c.errorPage(w, r, keylens.Errorf(keylens.EINVALID, "Choose enabled or disabled."))
		return
	}
	if err := c.Admins.SetAdminDisabled(r.Context(), id, disabled); err != nil {
		c.errorPage(w, r, err)
		return
	}
	msg := "admin-enabled"
	if disabled {
		msg = "admin-disabled"
	}
	redirect(w, r, Prefix+"admins", msg)
}

// GET /admin/admins/{id}/remove
func (c *Console) removeAdminPage(w http.ResponseWriter, r *http.Request) {
	a, err := c.Admins.FindAdminByID(r.Context(), r.PathValue("id"))
	if err != nil {
		c.errorPage(w, r, err)
		return
	}
	if !c.notSelf(w, r, a.ID) {
		return
	}
	c.render(w, r, http.StatusOK, "confirm", view{Title: "Remove admin", Nav: "admins", Data: confirmData{
		Heading: "Remove the admin " + a.Email + "?",
		Text:    "Their account is deleted and their sessions end at once. What they did stays in the activity log.",
		Action:  Prefix + "admins/" + a.ID + "/remove", Button: "Remove admin", Cancel: Prefix + "admins"}})
}

// POST /admin/admins/{id}/remove
func (c *Console) removeAdmin(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !c.notSelf(w, r, id) {
		return
	}
	if err := c.Admins.DeleteAdmin(r.Context(), id); err != nil {
		c.errorPage(w, r, err)
		return
	}
	redirect(w, r, Prefix+"admins", "admin-removed")
}

const activityPerPage = 50

type activityData struct {
	Entries   []activityRow
	Developer string // the filter as typed
	FilterID  string // the developer id filtered on
	FilterFor string // their email, when known
	Total     int
	Page      pager
}

type activityRow struct {
	keylens.AuditEntry
	What       string
	ObjectLink string
	DevLink    string
}

// GET /admin/activity?developer=&p=: the audit trail, newest first; the
// developer filter takes an id or an email.
func (c *Console) activityPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d := activityData{Developer: strings.TrimSpace(r.URL.Query().Get("developer"))}
	var errMsg string
	switch {
	case d.Developer == "":
	case strings.Contains(d.Developer, "@"):
		dev, err := c.Developers.FindDeveloperByEmail(ctx, d.Developer)
		if keylens.ErrorCode(err) == keylens.ENOTFOUND {
			errMsg = "No developer has that email; a deleted developer's activity is found by their id."
		} else if err != nil {
			c.errorPage(w, r, err)
			return
		} else {
			d.FilterID, d.FilterFor = dev.ID, dev.Email
		}
	case keylens.IsObjectID(d.Developer):
		d.FilterID = d.Developer
		if dev, err := c.Developers.FindDeveloperByID(ctx, d.FilterID); err == nil {
			d.FilterFor = dev.Email
		}
	default:
		errMsg = "Filter by a developer's email or id."
	}
	page := pageParam(r)
	if errMsg == "" {
		entries, total, err := c.Audit.FindAudit(ctx, keylens.AuditFilter{DeveloperID: d.FilterID,
			Offset: (page - 1) * activityPerPage, Limit: activityPerPage})
		if err != nil {
			c.errorPage(w, r, err)
			return
		}
		d.Total = total
		for _, e := range entries {
			d.Entries = append(d.Entries, activityRowOf(e))
		}
	}
	d.Page = newPager(page, d.Total, activityPerPage, func(p int) string {
		v := url.Values{"p": {strconv.Itoa(p)}}
		if d.Developer != "" {
			v.Set("developer", d.Developer)
		}
		return Prefix + "activity?" + v.Encode()
	})
	c.render(w, r, http.StatusOK, "activity", view{Title: "Activity", Nav: "activity", Error: errMsg, Data: d})
}

// actions are the audit actions in words.
var actions = map[string]string{
	keylens.AuditDeveloperCreated:   "added developer",
	keylens.AuditDeveloperUpdated:   "edited developer",
	keylens.AuditDeveloperDeleted:   "deleted developer",
	keylens.AuditDeveloperPassword:  "set developer's password",
	keylens.AuditKeyRequestCreated:  "filed key request",
	keylens.AuditKeyRequestUpdated:  "edited key request",
	keylens.AuditKeyRequestDeleted:  "deleted (rejected) key request",
	keylens.AuditKeyRequestApproved: "approved key request",
	keylens.AuditKeyIssued:          "issued key",
	keylens.AuditKeyPolicies:        "changed key policy",
	keylens.AuditKeyRevoked:         "revoked key",
	keylens.AuditKeyQuotaReset:      "reset key quota",
	keylens.AuditOAuthClientDeleted: "deleted OAuth client",
	keylens.AuditOAuthTokenRevoked:  "revoked an OAuth token",
	keylens.AuditOAuthTokensRevoked: "revoked every OAuth token",
	keylens.AuditCatalogueUpdated:   "changed catalogue",
	keylens.AuditConfigUpdated:      "changed configuration",
	keylens.AuditAdminCreated:       "added admin",
	keylens.AuditAdminDisabled:      "disabled admin",
	keylens.AuditAdminEnabled:       "enabled admin",
	keylens.AuditAdminDeleted:       "removed admin",
}

func activityRowOf(e keylens.AuditEntry) activityRow {
	row := activityRow{AuditEntry: e, What: actions[e.Action]}
	if row.What == "" {
		row.What = e.Action
	}
	if e.DeveloperEmail != "" { // the developer still exists
		row.DevLink = Prefix + "developers/" + e.DeveloperID
		if e.ObjectType == keylens.ObjectKey && e.Action != keylens.AuditKeyRevoked {
			row.ObjectLink = row.DevLink + "/keys/" + e.ObjectID
		}
	}
	switch e.ObjectType {
	case keylens.ObjectCatalogue:
		row.ObjectLink = Prefix + "catalogue"
	case keylens.ObjectConfiguration:
		row.ObjectLink = Prefix + "configuration"
	case keylens.ObjectAdmin:
		if e.Action != keylens.AuditAdminDeleted {
			row.ObjectLink = Prefix + "admins"
		}
	}
	return row
}
