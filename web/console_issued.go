package web

import (
	"net/http"
	"time"

	"github.com/keylens/keylens"
)

// showOnce keeps what an approval issued and redirects to the page that
// shows it once.
func (c *Console) showOnce(w http.ResponseWriter, r *http.Request, dev *keylens.Developer, a *keylens.Approval, policies []string) {
	authType := keylens.AuthToken
	if cat, err := c.Catalogue.Catalogue(r.Context()); err == nil && len(policies) > 0 {
		if e := cat.Entry(policies[0]); e != nil {
			authType = e.AuthType
		}
	}
	if a.OAuthClient != nil {
		authType = keylens.AuthOAuth
	}
	nonce := c.issued.put(&issuedEntry{session: sessionFrom(r).IDHash, developerID: dev.ID, email: dev.Email,
		approval: a, authType: authType, policies: policies}, c.Now())
	http.Redirect(w, r, Prefix+"issued/"+nonce, http.StatusSeeOther)
}

type issuedData struct {
	DeveloperID, Email string
	AuthType           string
	Policies           []string
	RawKey, Password   string
	KeyHash            string
	Client             *keylens.OAuthClient
	Gone               bool
	// Slot tells apart the element ids of several credentials on a page.
	Slot string
	// Replaces is the key a rotation replaced, which stops working at
	// OldExpires.
	Replaces   string
	OldExpires time.Time
}

// OldStopped says the replaced key stopped at once (no grace).
func (d issuedData) OldStopped() bool { return !d.OldExpires.After(time.Now()) }

// GET /admin/issued/{nonce}
func (c *Console) issuedPage(w http.ResponseWriter, r *http.Request) {
	e := c.issued.take(r.PathValue("nonce"), sessionFrom(r).IDHash, c.Now())
	if e == nil {
		c.render(w, r, http.StatusGone, "issued", view{Title: "Issued credentials", Data: issuedData{Gone: true}})
		return
	}
	d := issuedData{DeveloperID: e.developerID, Email: e.email, AuthType: e.authType, Policies: e.policies,
		RawKey: e.approval.RawKey, Password: e.approval.Password, KeyHash: e.approval.KeyHash, Client: e.approval.OAuthClient,
		Replaces: e.replaces, OldExpires: e.oldExpires}
	c.render(w, r, http.StatusOK, "issued", view{Title: "Issued credentials", Nav: "developers", Data: d})
}
