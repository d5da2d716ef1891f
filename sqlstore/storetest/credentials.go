package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/keylens/keylens"
)

// Backend is what a sidecar needs of its store: resolving credentials,
// and issuing and revoking OAuth tokens for clients.
type Backend interface {
	keylens.CredentialService
	keylens.TokenService
}

// RunCredentials is the conformance suite of resolver backends: what a
// sidecar reads. newBackend returns an empty store and the backend under
// test over it (the store itself, or a client of a portal serving it).
func RunCredentials(t *testing.T, newBackend func(t *testing.T) (Store, Backend)) {
	t.Run("Tokens", func(t *testing.T) { testTokens(t, newBackend) })
	ctx := context.Background()
	setup := func(t *testing.T) (Store, Backend, *keylens.Developer, []string) {
		t.Helper()
		s, b := newBackend(t)
		if err := s.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
			{PolicyID: "pol-token"}, {PolicyID: "pol-basic", AuthType: keylens.AuthBasic},
			{PolicyID: "pol-jwt", AuthType: keylens.AuthJWT}, {PolicyID: "pol-oauth", AuthType: keylens.AuthOAuth}}}); err != nil {
			t.Fatal(err)
		}
		d := &keylens.Developer{Email: "ada@example.com", Fields: map[string]string{"Plan": "gold", "Use case": "billing"}}
		if err := s.CreateDeveloper(ctx, d); err != nil {
			t.Fatal(err)
		}
		var hashes []string
		for _, kr := range []keylens.KeyRequest{
			{ApplyPolicies: []string{"pol-token"}, Fields: map[string]any{"use": "tests", "seats": 3.0}},
			{ApplyPolicies: []string{"pol-basic"}},
			{ApplyPolicies: []string{"pol-jwt"}, JWTSecret: "an-hmac-secret-of-32-characters!"},
		} {
			a, err := s.IssueKey(ctx, d.ID, &kr)
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, a.KeyHash)
		}
		// An OAuth client: its secret must never travel with a credential.
		if _, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-oauth"},
			OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}}); err != nil {
			t.Fatal(err)
		}
		return s, b, d, hashes
	}

	t.Run("KeyWithItsOwner", func(t *testing.T) {
		s, b, d, hashes := setup(t)
		for i, h := range hashes {
			c, err := b.ResolveKey(ctx, h)
			if err != nil {
				t.Fatalf("key %d: %v", i, err)
			}
			want, _ := s.FindKey(ctx, h)
			gj, _ := json.Marshal(c.Key)
			wj, _ := json.Marshal(want)
			if string(gj) != string(wj) || c.Key.BasicPasswordHash != want.BasicPasswordHash ||
				c.Key.JWTSecret != want.JWTSecret || c.Key.JWTPublicKey != want.JWTPublicKey {
				t.Errorf("key %d:\n got %s\nwant %s", i, gj, wj)
			}
			o := c.Owner
			if o.ID != d.ID || o.Email != d.Email || o.OrgID == "" || o.OrgID != d.OrgID || o.Inactive ||
				len(o.Fields) != 2 || o.Fields["Use case"] != "billing" {
				t.Errorf("key %d: owner %+v, want %s", i, o, d.ID)
			}
		}
		if c, _ := b.ResolveKey(ctx, hashes[0]); c.Key.Fields["seats"] != 3.0 || len(c.Key.Policies) != 1 {
			t.Errorf("key request fields and policies: %+v", c.Key)
		}
		if c, _ := b.ResolveKey(ctx, hashes[1]); c.Key.BasicPasswordHash == "" || c.Key.BasicUsername == "" {
			t.Errorf("a basic key without its verification material: %+v", c.Key)
		}
		if c, _ := b.ResolveKey(ctx, hashes[2]); c.Key.JWTSecret != "an-hmac-secret-of-32-characters!" {
			t.Errorf("a JWT key without its secret: %+v", c.Key)
		}
	})

	t.Run("BasicUser", func(t *testing.T) {
		s, b, d, hashes := setup(t)
		k, _ := s.FindKey(ctx, hashes[1])
		c, err := b.ResolveBasicUser(ctx, k.BasicUsername)
		if err != nil || c.Key.Hash != hashes[1] || c.Owner.ID != d.ID || c.Key.BasicPasswordHash != k.BasicPasswordHash {
			t.Errorf("ResolveBasicUser: %+v, %v", c, err)
		}
	})

	t.Run("InactiveOwner", func(t *testing.T) {
		s, b, d, hashes := setup(t)
		d, _ = s.FindDeveloperByID(ctx, d.ID) // with its keys: an update replaces them
		d.Inactive = true
		if err := s.UpdateDeveloper(ctx, d.ID, d); err != nil {
			t.Fatal(err)
		}
		if c, err := b.ResolveKey(ctx, hashes[0]); err != nil || !c.Owner.Inactive {
			t.Errorf("a deactivated owner: %+v, %v", c, err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s, b, d, hashes := setup(t)
		if err := s.RevokeKey(ctx, d.ID, hashes[0]); err != nil {
			t.Fatal(err)
		}
		k, _ := s.FindKey(ctx, hashes[1])
		for name, err := range map[string]error{
			"revoked key":    func() error { _, err := b.ResolveKey(ctx, hashes[0]); return err }(),
			"unknown key":    func() error { _, err := b.ResolveKey(ctx, "0123abcd"); return err }(),
			"unknown user":   func() error { _, err := b.ResolveBasicUser(ctx, "nobody"); return err }(),
			"empty user":     func() error { _, err := b.ResolveBasicUser(ctx, ""); return err }(),
			"path in a hash": func() error { _, err := b.ResolveKey(ctx, "../developers"); return err }(),
		} {
			if keylens.ErrorCode(err) != keylens.ENOTFOUND && !(name == "empty user" && keylens.ErrorCode(err) == keylens.EINVALID) {
				t.Errorf("%s: %v, want ENOTFOUND", name, err)
			}
		}
		if err := s.DeleteDeveloper(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		for _, h := range hashes[1:] {
			if _, err := b.ResolveKey(ctx, h); keylens.ErrorCode(err) != keylens.ENOTFOUND {
				t.Errorf("a key of a deleted developer: %v, want ENOTFOUND", err)
			}
		}
		if _, err := b.ResolveBasicUser(ctx, k.BasicUsername); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("the basic user of a deleted developer: %v, want ENOTFOUND", err)
		}
	})
}
