package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keylens/keylens"
)

// The rows of keys, policies and OAuth clients, as both apps list them.

type keyRow struct {
	Hash, Short   string
	AuthType      string
	BasicUsername string
	Policies      []policyRow
	Created       time.Time
	QuotaReset    time.Time
	// Expires is when a replaced key stops working (zero for a key not
	// replaced), ReplacedBy the hash of the key that replaced it.
	Expires    time.Time
	ReplacedBy string
}

// StopsIn says how long a replaced key has left, for "stops working in
// …": "3 hours", "1 minute", "less than a minute"; "now" once it has
// passed.
func (k keyRow) StopsIn() string { return untilText(time.Until(k.Expires)) }

// untilText says d in words, rounded to the nearest of its largest unit.
func untilText(d time.Duration) string {
	in := func(unit time.Duration, name string) string {
		n := int64((d + unit/2) / unit)
		if n == 1 {
			return "1 " + name
		}
		return strconv.FormatInt(n, 10) + " " + name + "s"
	}
	switch {
	case d <= 0:
		return "now"
	case d >= 47*time.Hour+30*time.Minute:
		return in(24*time.Hour, "day")
	case d >= 59*time.Minute+30*time.Second:
		return in(time.Hour, "hour")
	case d >= 30*time.Second:
		return in(time.Minute, "minute")
	}
	return "less than a minute"
}

// predecessorOf is the key of keys that k replaced, while it is in its
// grace; nil when none is.
func predecessorOf(k *keylens.Key, keys []*keylens.Key, cat *keylens.Catalogue) *keyRow {
	for _, o := range keys {
		if o.ReplacedBy == k.Hash {
			row := keyRowOf(o, cat)
			return &row
		}
	}
	return nil
}

// graceChoice is a grace period a rotation form offers.
type graceChoice struct{ Value, Label string }

// graceChoices are the grace periods a developer or admin picks from when
// rotating a key, up to max (--max-rotation-grace); "stop at once" always.
func graceChoices(max time.Duration) []graceChoice {
	all := []struct {
		d     time.Duration
		label string
	}{{0, "Stop the old key at once"}, {time.Hour, "1 hour"}, {24 * time.Hour, "1 day"},
		{7 * 24 * time.Hour, "7 days"}, {30 * 24 * time.Hour, "30 days"}}
	var out []graceChoice
	for _, c := range all {
		if c.d <= max {
			out = append(out, graceChoice{Value: c.d.String(), Label: c.label})
		}
	}
	return out
}

// rotationForm reads a rotation form (grace, and a jwt key's new
// secret): EINVALID for a grace the form never offered.
func rotationForm(r *http.Request, max time.Duration) (keylens.KeyRotation, error) {
	v := formValue(r, "grace")
	for _, c := range graceChoices(max) {
		if c.Value == v {
			grace, err := keylens.ParseGrace(v)
			return keylens.KeyRotation{Grace: grace, JWTSecret: strings.TrimSpace(r.PostFormValue("jwt_secret"))}, err
		}
	}
	return keylens.KeyRotation{}, keylens.Errorf(keylens.EINVALID, "Choose how long the old key keeps working.")
}

type policyRow struct {
	ID, Name string // Name "" when no catalogue entry publishes the policy
}

type clientRow struct {
	ClientID, AppDescription, RedirectURI string
	Policy                                policyRow
	Created                               time.Time
}

func keyRowOf(k *keylens.Key, cat *keylens.Catalogue) keyRow {
	row := keyRow{Hash: k.Hash, Short: shortHash(k.Hash), AuthType: k.AuthType, BasicUsername: k.BasicUsername,
		Created: k.DateCreated, QuotaReset: k.QuotaResetAt, Expires: k.ExpiresAt, ReplacedBy: k.ReplacedBy}
	if row.AuthType == "" {
		row.AuthType = "imported"
	}
	for _, p := range k.Policies {
		row.Policies = append(row.Policies, policyOf(p, cat))
	}
	return row
}

// policyOf matches a policy to the catalogue entry that publishes it.
func policyOf(id string, cat *keylens.Catalogue) policyRow {
	if e := cat.Entry(id); e != nil {
		name := e.Name
		if name == "" {
			name = id
		}
		return policyRow{ID: id, Name: name}
	}
	return policyRow{ID: id}
}

// shortHash shortens a key hash for lists: the first 8 characters. An
// object id (a developer's, a key request's) stays whole: its first 8
// characters are the second it was made, alike for ids made together.
func shortHash(h string) string {
	if len(h) <= 12 || keylens.IsObjectID(h) {
		return h
	}
	return h[:8] + "…"
}
