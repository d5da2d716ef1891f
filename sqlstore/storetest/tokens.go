package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// testTokens: OAuth access tokens issued and revoked through the backend,
// resolved through it, and revoked by the admin through the store.
func testTokens(t *testing.T, newBackend func(t *testing.T) (Store, Backend)) {
	ctx := context.Background()
	// setup: a developer with two OAuth clients of one policy.
	setup := func(t *testing.T) (Store, Backend, *keylens.Developer, [2]keylens.ClientCredentials) {
		t.Helper()
		s, b := newBackend(t)
		if err := s.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
			{PolicyID: "pol-oauth", AuthType: keylens.AuthOAuth}}}); err != nil {
			t.Fatal(err)
		}
		d := &keylens.Developer{Email: "ada@example.com", Fields: map[string]string{"Plan": "gold"}}
		if err := s.CreateDeveloper(ctx, d); err != nil {
			t.Fatal(err)
		}
		var clients [2]keylens.ClientCredentials
		for i := range clients {
			a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-oauth"},
				OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}})
			if err != nil {
				t.Fatal(err)
			}
			clients[i] = keylens.ClientCredentials{ID: a.OAuthClient.ClientID, Secret: a.OAuthClient.Secret}
		}
		return s, b, d, clients
	}
	issue := func(t *testing.T, b Backend, c keylens.ClientCredentials) string {
		t.Helper()
		_, hash := keylens.NewAccessToken()
		if _, err := b.IssueToken(ctx, c, hash, time.Hour); err != nil {
			t.Fatal(err)
		}
		return hash
	}
	resolves := func(b Backend, hash string) bool {
		_, err := b.ResolveToken(ctx, hash)
		return err == nil
	}

	t.Run("IssuedTokenResolvesToItsDeveloper", func(t *testing.T) {
		_, b, d, clients := setup(t)
		token, hash := keylens.NewAccessToken()
		if !keylens.IsAccessToken([]byte(token)) || keylens.TokenHash(token) != hash || keylens.TokenHashOf(hash) != hash {
			t.Fatalf("token %q, hash %q", token, hash)
		}
		g, err := b.IssueToken(ctx, clients[0], hash, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if g.ClientID != clients[0].ID || g.DeveloperID != d.ID || len(g.Policies) != 1 || g.Policies[0] != "pol-oauth" ||
			g.ExpiresAt-g.IssuedAt != 90 || time.Since(time.Unix(g.IssuedAt, 0)).Abs() > time.Minute {
			t.Errorf("grant %+v", g)
		}
		c, err := b.ResolveToken(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		if c.Token == nil || c.Token.ClientID != g.ClientID || c.Token.ExpiresAt != g.ExpiresAt || c.Token.IssuedAt != g.IssuedAt {
			t.Errorf("token %+v, want %+v", c.Token, g)
		}
		o := c.Owner
		if o.ID != d.ID || o.Email != d.Email || o.Fields["Plan"] != "gold" || o.Inactive || o.OrgID == "" {
			t.Errorf("owner %+v", o)
		}
		if c.Key.Hash != hash || c.Key.DeveloperID != d.ID || c.Key.AuthType != keylens.AuthOAuth ||
			len(c.Key.Policies) != 1 || c.Key.Policies[0] != "pol-oauth" || c.Key.JWTSecret != "" || c.Key.BasicPasswordHash != "" {
			t.Errorf("key %+v", c.Key)
		}
		// A token is no key, and a key hash is no token.
		if _, err := b.ResolveKey(ctx, hash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("ResolveKey of a token: %v", err)
		}
	})

	t.Run("BadClientsGetNothing", func(t *testing.T) {
		s, b, d, clients := setup(t)
		_, hash := keylens.NewAccessToken()
		for name, c := range map[string]keylens.ClientCredentials{
			"wrong secret":   {ID: clients[0].ID, Secret: clients[1].Secret},
			"empty secret":   {ID: clients[0].ID},
			"unknown client": {ID: "nobody", Secret: clients[0].Secret},
		} {
			if _, err := b.IssueToken(ctx, c, hash, time.Hour); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
				t.Errorf("%s: %v, want EUNAUTHORIZED", name, err)
			}
		}
		for name, h := range map[string]string{"not a hash": "klat_abc", "short": "0123abcd", "upper": "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"} {
			if _, err := b.IssueToken(ctx, clients[0], h, time.Hour); keylens.ErrorCode(err) != keylens.EINVALID {
				t.Errorf("%s: %v, want EINVALID", name, err)
			}
		}
		if resolves(b, hash) {
			t.Error("a refused token resolves")
		}
		// An inactive developer's clients get no token.
		d, _ = s.FindDeveloperByID(ctx, d.ID)
		d.Inactive = true
		if err := s.UpdateDeveloper(ctx, d.ID, d); err != nil {
			t.Fatal(err)
		}
		if _, err := b.IssueToken(ctx, clients[0], hash, time.Hour); keylens.ErrorCode(err) != keylens.ECONFLICT {
			t.Errorf("inactive developer: %v, want ECONFLICT", err)
		}
	})

	t.Run("ClientRevokesItsOwnToken", func(t *testing.T) {
		s, b, d, clients := setup(t)
		mine, theirs := issue(t, b, clients[0]), issue(t, b, clients[1])
		if err := b.RevokeClientToken(ctx, keylens.ClientCredentials{ID: clients[0].ID, Secret: "wrong"}, mine); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
			t.Errorf("wrong secret: %v", err)
		}
		// Another client's token: no error, nothing revoked (RFC 7009).
		if err := b.RevokeClientToken(ctx, clients[0], theirs); err != nil {
			t.Errorf("another client's token: %v", err)
		}
		if !resolves(b, mine) || !resolves(b, theirs) {
			t.Fatal("a refused revocation revoked")
		}
		start, _ := s.LastChange(ctx)
		if err := b.RevokeClientToken(ctx, clients[0], mine); err != nil {
			t.Fatal(err)
		}
		if resolves(b, mine) || !resolves(b, theirs) {
			t.Error("revoked the wrong token")
		}
		changes, _, _ := s.ChangesSince(ctx, start, 10)
		if len(changes) != 1 || changes[0].Kind != keylens.ChangeTokenRevoked || changes[0].KeyHash != mine ||
			changes[0].DeveloperID != d.ID || changes[0].ClientID != clients[0].ID {
			t.Errorf("changes %+v", changes)
		}
		if err := b.RevokeClientToken(ctx, clients[0], mine); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
	})

	t.Run("AdminRevokes", func(t *testing.T) {
		s, b, d, clients := setup(t)
		a1, a2, other := issue(t, b, clients[0]), issue(t, b, clients[0]), issue(t, b, clients[1])
		if err := s.RevokeToken(ctx, "nobody", a1); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("unknown client: %v", err)
		}
		if err := s.RevokeToken(ctx, clients[1].ID, a1); err != nil || !resolves(b, a1) {
			t.Errorf("another client's token: %v", err)
		}
		if err := s.RevokeToken(ctx, clients[0].ID, a1); err != nil || resolves(b, a1) || !resolves(b, a2) {
			t.Errorf("RevokeToken: %v", err)
		}
		for name, c := range map[string]keylens.ClientCredentials{"wrong secret": {ID: clients[0].ID, Secret: clients[1].Secret}, "no secret": {ID: clients[0].ID}} {
			if err := s.RevokeAllTokens(ctx, c); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED || !resolves(b, a2) {
				t.Errorf("%s: %v, and the token must still resolve", name, err)
			}
		}
		if err := s.RevokeAllTokens(ctx, keylens.ClientCredentials{ID: "nobody", Secret: "x"}); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("unknown client: %v", err)
		}
		start, _ := s.LastChange(ctx)
		if err := s.RevokeAllTokens(ctx, clients[0]); err != nil {
			t.Fatal(err)
		}
		if resolves(b, a2) || !resolves(b, other) {
			t.Error("revoke_all revoked the wrong tokens")
		}
		changes, _, _ := s.ChangesSince(ctx, start, 10)
		if len(changes) != 1 || changes[0].Kind != keylens.ChangeTokensRevoked || changes[0].DeveloperID != d.ID || changes[0].ClientID != clients[0].ID {
			t.Errorf("changes %+v", changes)
		}
		// The client can still get tokens.
		if again := issue(t, b, clients[0]); !resolves(b, again) {
			t.Error("a new token after revoke_all does not resolve")
		}
	})

	t.Run("TokensGoWithTheirClientOrDeveloper", func(t *testing.T) {
		s, b, d, clients := setup(t)
		t0, t1 := issue(t, b, clients[0]), issue(t, b, clients[1])
		// An update that keeps the clients keeps their tokens.
		d, _ = s.FindDeveloperByID(ctx, d.ID)
		d.Fields["Plan"] = "silver"
		if err := s.UpdateDeveloper(ctx, d.ID, d); err != nil {
			t.Fatal(err)
		}
		if c, err := b.ResolveToken(ctx, t0); err != nil || c.Owner.Fields["Plan"] != "silver" {
			t.Fatalf("after an update: %+v, %v", c, err)
		}
		if err := s.DeleteOAuthClient(ctx, clients[0].ID); err != nil {
			t.Fatal(err)
		}
		if resolves(b, t0) || !resolves(b, t1) {
			t.Error("deleting a client: its token must go, the other stay")
		}
		if _, err := b.IssueToken(ctx, clients[0], t0, time.Hour); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
			t.Errorf("a deleted client gets a token: %v", err)
		}
		if err := s.DeleteDeveloper(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if resolves(b, t1) {
			t.Error("a deleted developer's token resolves")
		}
	})

	t.Run("Prune", func(t *testing.T) {
		s, b, _, clients := setup(t)
		hash := issue(t, b, clients[0])
		if n, err := s.PruneTokens(ctx, time.Now()); err != nil || n != 0 || !resolves(b, hash) {
			t.Errorf("pruning live tokens: %d, %v", n, err)
		}
		if n, err := s.PruneTokens(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 1 || resolves(b, hash) {
			t.Errorf("pruning expired tokens: %d, %v", n, err)
		}
	})
}
