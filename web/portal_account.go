package web

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
	"github.com/keylens/keylens/guard"
	"github.com/keylens/keylens/mailer"
	"github.com/keylens/keylens/rest"
)

// profileFields are the profile fields every developer may edit (as on the
// Tyk Classic Portal's developer screens: name, telephone, country
// location); the configuration's sign-up fields come after them.
var profileFields = []string{"Name", "Telephone", "Country location"}

type field struct{ Name, Value string }

type signUpData struct {
	Email  string
	Fields []field
}

// signUpFields are the configuration's sign-up fields with values.
func (p *Portal) signUpFields(ctx context.Context, values map[string]string) ([]field, error) {
	cfg, err := p.Catalogue.PortalConfig(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]field, 0, len(cfg.SignupFields))
	for _, name := range cfg.SignupFields {
		if name = strings.TrimSpace(name); name != "" {
			out = append(out, field{Name: name, Value: values[name]})
		}
	}
	return out, nil
}

// postedFields reads the field_name/field_value pairs of a form, keeping
// only the names of the fields the form offered.
func postedFields(r *http.Request, offered []field) map[string]string {
	names, values := r.PostForm["field_name"], r.PostForm["field_value"]
	out := map[string]string{}
	for i, n := range names {
		if i < len(values) && slices.ContainsFunc(offered, func(f field) bool { return f.Name == n }) {
			out[n] = strings.TrimSpace(values[i])
		}
	}
	return out
}

// GET /signup
func (p *Portal) signUpPage(w http.ResponseWriter, r *http.Request) {
	if sessionFrom(r) != nil {
		http.Redirect(w, r, p.home, http.StatusSeeOther)
		return
	}
	fields, err := p.signUpFields(r.Context(), nil)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	p.renderPublic(w, r, http.StatusOK, "portal_signup", view{Title: "Sign up", Nav: "signup", Data: signUpData{Fields: fields}})
}

// POST /signup: email, password and the configuration's sign-up fields.
// The new developer is signed in at once.
func (p *Portal) signUp(w http.ResponseWriter, r *http.Request) {
	if !p.checkPublicForm(w, r) {
		return
	}
	email, password := formValue(r, "email"), r.PostFormValue("password")
	fields, err := p.signUpFields(r.Context(), nil)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	values := postedFields(r, fields)
	for i := range fields {
		fields[i].Value = values[fields[i].Name]
	}
	d := &keylens.Developer{Email: email, Password: password, Fields: map[string]string{}}
	for n, v := range values {
		if v != "" {
			d.Fields[n] = v
		}
	}
	err = keylens.ValidateTypedPassword(password)
	if err == nil {
		ctx := keylens.WithActor(r.Context(), keylens.Actor{Name: email, Via: keylens.ViaPortal})
		err = p.Developers.CreateDeveloper(ctx, d)
	}
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EINVALID, keylens.ECONFLICT:
		p.renderPublic(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), "portal_signup", view{Title: "Sign up", Nav: "signup",
			Error: keylens.ErrorMessage(err), Data: signUpData{Email: email, Fields: fields}})
		return
	default:
		p.errorPage(w, r, err)
		return
	}
	p.startSession(w, r, &keylens.Session{DeveloperID: d.ID}, "/dashboard?done=welcome")
}

type logInData struct {
	Email string
	Next  string
}

// GET /login
func (p *Portal) logInPage(w http.ResponseWriter, r *http.Request) {
	if sessionFrom(r) != nil {
		http.Redirect(w, r, p.home, http.StatusSeeOther)
		return
	}
	p.renderSignIn(w, r, http.StatusOK, logInData{Next: p.safeNext(r.URL.Query().Get("next"))}, "")
}

// POST /login
func (p *Portal) logIn(w http.ResponseWriter, r *http.Request) {
	if !p.checkPublicForm(w, r) {
		return
	}
	email, password := formValue(r, "email"), r.PostFormValue("password")
	d := logInData{Email: email, Next: p.safeNext(r.PostFormValue("next"))}
	p.signInWithPassword(w, r, d, guard.DeveloperAccount(email), d.Next, "Wrong email or password, or the account is inactive.",
		func() (*keylens.Session, error) {
			dev, err := p.Developers.VerifyCredentials(r.Context(), email, password)
			if err != nil {
				return nil, err
			}
			return &keylens.Session{DeveloperID: dev.ID}, nil
		})
}

// ---- password reset by email ----

type resetData struct {
	Email string
	Sent  bool
}

// GET /reset: "Request password reset".
func (p *Portal) resetPage(w http.ResponseWriter, r *http.Request) {
	p.renderPublic(w, r, http.StatusOK, "portal_reset", view{Title: "Request password reset", Data: resetData{}})
}

// POST /reset answers the same whether or not the email is a developer's:
// the token is made and the email sent after the answer, in the
// background, so that not even the time taken tells. An address gets at
// most the sign-in limiter's allowance of emails per window.
func (p *Portal) requestReset(w http.ResponseWriter, r *http.Request) {
	if !p.checkPublicForm(w, r) {
		return
	}
	email := formValue(r, "email")
	if keylens.ValidateEmail(email) != nil {
		p.renderPublic(w, r, http.StatusBadRequest, "portal_reset", view{Title: "Request password reset",
			Error: "Enter the email address you signed up with.", Data: resetData{Email: email}})
		return
	}
	if p.signIn.ResetEmail(email) {
		p.mails.Add(1)
		go func() {
			defer p.mails.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p.sendReset(ctx, email)
		}()
	}
	p.renderPublic(w, r, http.StatusOK, "portal_reset", view{Title: "Request password reset", Data: resetData{Email: email, Sent: true}})
}

func (p *Portal) sendReset(ctx context.Context, email string) {
	token, dev, err := p.Accounts.CreatePasswordReset(ctx, email)
	if keylens.ErrorCode(err) == keylens.ENOTFOUND {
		return
	} else if err != nil {
		p.Logger.Error("making a password reset token failed", "err", err)
		return
	}
	body := "Someone, probably you, asked to reset the password of your account (" + dev.Email + ") at " + p.URL + ".\n\n" +
		"Set a new password here; the link works once, for one hour:\n\n" + p.URL + "/reset/" + token + "\n\n" +
		"If you did not ask, ignore this email: your password stays as it is.\n"
	if err := p.Mailer.Send(ctx, mailer.Message{To: dev.Email, Subject: "Reset your password", Body: body}); err != nil {
		p.Logger.Error("sending a password reset email failed", "developer", dev.ID, "err", err)
	}
}

type resetSetData struct{ Token string }

// GET /reset/{token}: the email's link.
func (p *Portal) resetSetPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if err := p.Accounts.CheckPasswordReset(r.Context(), token); err != nil {
		p.errorPage(w, r, err)
		return
	}
	p.renderPublic(w, r, http.StatusOK, "portal_reset_set", view{Title: "Set a new password", Data: resetSetData{Token: token}})
}

// POST /reset/{token}: the new password; every session of the developer
// ends.
func (p *Portal) resetSet(w http.ResponseWriter, r *http.Request) {
	if !p.checkPublicForm(w, r) {
		return
	}
	token := r.PathValue("token")
	_, err := p.Accounts.ResetPassword(r.Context(), token, r.PostFormValue("password"))
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EINVALID:
		p.renderPublic(w, r, http.StatusBadRequest, "portal_reset_set", view{Title: "Set a new password",
			Error: keylens.ErrorMessage(err), Data: resetSetData{Token: token}})
		return
	default:
		p.errorPage(w, r, err)
		return
	}
	p.clearCookie(w, p.sessionCookie)
	http.Redirect(w, r, "/login?done=password-reset", http.StatusSeeOther)
}

// ---- profile and password ----

type portalProfileData struct {
	Dev    *keylens.Developer
	Fields []field
}

// editableFields are the profile's fields with the developer's values.
func (p *Portal) editableFields(ctx context.Context, dev *keylens.Developer) ([]field, error) {
	cfg, err := p.Catalogue.PortalConfig(ctx)
	if err != nil {
		return nil, err
	}
	names := append([]string(nil), profileFields...)
	for _, n := range cfg.SignupFields {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	out := make([]field, len(names))
	for i, n := range names {
		out[i] = field{Name: n, Value: dev.Fields[n]}
	}
	return out, nil
}

// GET /profile
func (p *Portal) profilePage(w http.ResponseWriter, r *http.Request) {
	dev, err := p.me(r.Context(), r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	fields, err := p.editableFields(r.Context(), dev)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "portal_profile", view{Title: "Edit profile", Nav: "profile", Flash: p.flash(r),
		Data: portalProfileData{Dev: dev, Fields: fields}})
}

// POST /profile: the editable fields; every other field of the developer
// (those an admin set) stays as it is.
func (p *Portal) saveProfile(w http.ResponseWriter, r *http.Request) {
	dev, err := p.me(r.Context(), r)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	fields, err := p.editableFields(r.Context(), dev)
	if err != nil {
		p.errorPage(w, r, err)
		return
	}
	posted := postedFields(r, fields)
	next := map[string]string{}
	for n, v := range dev.Fields {
		next[n] = v
	}
	for i, f := range fields {
		v, sent := posted[f.Name]
		if !sent {
			continue
		}
		fields[i].Value = v
		if v == "" {
			delete(next, f.Name)
		} else {
			next[f.Name] = v
		}
	}
	_, err = p.Developers.PatchDeveloper(r.Context(), dev.ID, keylens.DeveloperPatch{Fields: next})
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EINVALID:
		p.render(w, r, http.StatusBadRequest, "portal_profile", view{Title: "Edit profile", Nav: "profile",
			Error: keylens.ErrorMessage(err), Data: portalProfileData{Dev: dev, Fields: fields}})
		return
	default:
		p.errorPage(w, r, err)
		return
	}
	redirect(w, r, "/profile", "profile-saved")
}

// GET /password
func (p *Portal) passwordPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "portal_password", view{Title: "Change password", Nav: "profile"})
}

// POST /password: the current password and a new one, not one of the last
// ones kept (PWHistory). The current password is checked through the
// sign-in flow, as a sign-in of the account; the developer's other
// sessions end.
func (p *Portal) changePassword(w http.ResponseWriter, r *http.Request) {
	s := sessionFrom(r)
	var err error
	out, _ := p.signIn.Attempt(guard.DeveloperAccount(s.Email), guard.Client(r), func() (bool, error) {
		err = p.Accounts.ChangePassword(r.Context(), s.DeveloperID, r.PostFormValue("current"), r.PostFormValue("password"), s.IDHash)
		return guard.Credentials(err)
	})
	if out.Verdict == guard.Refused {
		w.Header().Set("Retry-After", strconv.Itoa(out.RetrySeconds()))
		p.render(w, r, http.StatusTooManyRequests, "portal_password", view{Title: "Change password", Nav: "profile",
			Error: "Too many wrong passwords. Try again in " + humanDuration(out.RetryAfter) + "."})
		return
	}
	switch keylens.ErrorCode(err) {
	case "":
	case keylens.EUNAUTHORIZED, keylens.EINVALID:
		p.render(w, r, rest.HTTPStatus(keylens.ErrorCode(err)), "portal_password", view{Title: "Change password", Nav: "profile",
			Error: keylens.ErrorMessage(err)})
		return
	default:
		p.errorPage(w, r, err)
		return
	}
	redirect(w, r, "/profile", "password-changed")
}
