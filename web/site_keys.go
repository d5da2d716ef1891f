package web

import (
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
		Created: k.DateCreated, QuotaReset: k.QuotaResetAt}
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
