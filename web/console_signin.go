package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
)

type signInData struct {
	Email string
	Next  string
}

// GET /admin/signin
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, signInData{Next: c.safeNext(r.URL.Query().Get("next"))}, "")
}

// POST /admin/signin: email and password of an admin account.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !c.checkPublicForm(w, r) {
		return
	}
	email, password := formValue(r, "email"), r.PostFormValue("password")
	d := signInData{Email: email, Next: c.safeNext(r.PostFormValue("next"))}
	c.signInWithPassword(w, r, d, guard.ConsoleAccount(email), d.Next, "Wrong email or password, or the account is disabled.",
		func() (*keylens.Session, error) {
			a, err := c.Admins.VerifyAdmin(r.Context(), email, password)
			if err != nil {
				return nil, err
			}
			return &keylens.Session{AdminID: a.ID}, nil
		})
}

// POST /admin/signin/key: the admin key.
func (c *Console) signInWithKey(w http.ResponseWriter, r *http.Request) {
	if !c.checkPublicForm(w, r) {
		return
	}
	d := signInData{Next: c.safeNext(r.PostFormValue("next"))}
	c.signInWith(w, r, d, guard.AdminKey, d.Next, "That is not the admin key.", func() (*keylens.Session, bool, error) {
		key := strings.TrimSpace(r.PostFormValue("key"))
		sum := sha256.Sum256([]byte(key))
		if key == "" || subtle.ConstantTimeCompare(sum[:], c.AdminKeyHash[:]) != 1 {
			return nil, false, nil
		}
		return &keylens.Session{AdminKey: keylens.AdminKeyFingerprint(c.AdminKeyHash)}, true, nil
	})
}
