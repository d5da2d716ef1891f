package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// developerSession stores a session of developer devID and returns its
// IDHash.
func developerSession(t *testing.T, s Store, devID string) string {
	t.Helper()
	now := time.Unix(time.Now().Unix(), 0)
	_, hash := keylens.NewSessionID()
	if err := s.CreateSession(context.Background(), &keylens.Session{IDHash: hash, DeveloperID: devID, Created: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	return hash
}

func testDeveloperSessions(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	s := newStore(t)
	ada := &keylens.Developer{Email: "ada@example.com", Password: "analytical"}
	bob := &keylens.Developer{Email: "bob@example.com", Password: "babbage-1"}
	mustCreate(t, s, ada, bob)
	a1, a2, b1 := developerSession(t, s, ada.ID), developerSession(t, s, ada.ID), developerSession(t, s, bob.ID)
	got, err := s.FindSession(ctx, a1)
	if err != nil || got.DeveloperID != ada.ID || got.Email != "ada@example.com" || got.AdminID != "" || !got.IsDeveloper() {
		t.Fatalf("developer session read back as %+v, %v", got, err)
	}
	if a := got.Actor(keylens.ViaPortal); a.ID != ada.ID || a.Name != ada.Email || a.Via != keylens.ViaPortal {
		t.Errorf("a developer session acts as %+v", a)
	}
	_, both := keylens.NewSessionID()
	if err := s.CreateSession(ctx, &keylens.Session{IDHash: both, DeveloperID: ada.ID, AdminKey: "fp"}); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a session of a developer and the admin key: %v, want EINVALID", err)
	}

	if err := s.DeleteDeveloperSessions(ctx, ada.ID, a1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindSession(ctx, a1); err != nil {
		t.Errorf("the kept session went: %v", err)
	}
	if _, err := s.FindSession(ctx, a2); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("the other session of the developer survived: %v", err)
	}
	if _, err := s.FindSession(ctx, b1); err != nil {
		t.Errorf("another developer's session went: %v", err)
	}

	off := true
	if _, err := s.PatchDeveloper(ctx, ada.ID, keylens.DeveloperPatch{Inactive: &off}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindSession(ctx, a1); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("an inactive developer's session still counts: %v", err)
	}
	if err := s.DeleteDeveloper(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindSession(ctx, b1); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("a deleted developer's session still counts: %v", err)
	}
}

func testChangePassword(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	s := newStore(t)
	ada := &keylens.Developer{Email: "ada@example.com", Password: "first-pass"}
	mustCreate(t, s, ada)
	keep, other := developerSession(t, s, ada.ID), developerSession(t, s, ada.ID)

	if err := s.ChangePassword(ctx, ada.ID, "wrong-pass", "second-pass", keep); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
		t.Errorf("a wrong current password: %v, want EUNAUTHORIZED", err)
	}
	if err := s.ChangePassword(ctx, ada.ID, "first-pass", "short", keep); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a 5-character password: %v, want EINVALID", err)
	}
	if err := s.ChangePassword(ctx, ada.ID, "first-pass", "first-pass", keep); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("the current password again: %v, want EINVALID", err)
	}
	if err := s.ChangePassword(ctx, ada.ID, "first-pass", "second-pass", keep); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyCredentials(ctx, ada.Email, "second-pass"); err != nil {
		t.Errorf("the new password does not sign in: %v", err)
	}
	if _, err := s.FindSession(ctx, other); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("another session survived a password change: %v", err)
	}
	if _, err := s.FindSession(ctx, keep); err != nil {
		t.Errorf("the session that changed the password ended: %v", err)
	}
	// The history refuses every password it holds, not just the last.
	if err := s.ChangePassword(ctx, ada.ID, "second-pass", "first-pass", keep); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("reusing an earlier password: %v, want EINVALID", err)
	}
	d, _ := s.FindDeveloperByID(ctx, ada.ID)
	if len(d.PasswordHistory) != 2 {
		t.Errorf("history holds %d hashes, want 2", len(d.PasswordHistory))
	}
	if err := s.ChangePassword(ctx, keylens.NewObjectID(time.Now()), "x", "third-pass", keep); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("an unknown developer: %v", err)
	}
}

func testPasswordReset(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	s := newStore(t)
	ada := &keylens.Developer{Email: "ada@example.com", Password: "first-pass"}
	off := &keylens.Developer{Email: "off@example.com", Password: "first-pass", Inactive: true}
	mustCreate(t, s, ada, off)
	sess := developerSession(t, s, ada.ID)

	for _, email := range []string{"nobody@example.com", "off@example.com", ""} {
		if _, _, err := s.CreatePasswordReset(ctx, email); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("a reset for %q: %v, want ENOTFOUND", email, err)
		}
	}
	token, d, err := s.CreatePasswordReset(ctx, "ADA@example.com")
	if err != nil || d.ID != ada.ID || len(token) != 43 {
		t.Fatalf("CreatePasswordReset = %q, %+v, %v", token, d, err)
	}
	if err := s.CheckPasswordReset(ctx, token); err != nil {
		t.Errorf("a fresh token: %v", err)
	}
	for _, bad := range []string{"", token + "x", keylens.SessionHash(token)} {
		if err := s.CheckPasswordReset(ctx, bad); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("token %q: %v, want ENOTFOUND", bad, err)
		}
	}
	if _, err := s.ResetPassword(ctx, token, "first-pass"); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a reset to the current password: %v, want EINVALID", err)
	}
	if err := s.CheckPasswordReset(ctx, token); err != nil {
		t.Errorf("a refused password spent the token: %v", err)
	}
	if got, err := s.ResetPassword(ctx, token, "reset-pass"); err != nil || got.ID != ada.ID {
		t.Fatalf("ResetPassword = %+v, %v", got, err)
	}
	if _, err := s.VerifyCredentials(ctx, ada.Email, "reset-pass"); err != nil {
		t.Errorf("the reset password does not sign in: %v", err)
	}
	if _, err := s.FindSession(ctx, sess); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("a session survived the reset: %v", err)
	}
	if _, err := s.ResetPassword(ctx, token, "another-pass"); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("a token used twice: %v, want ENOTFOUND", err)
	}
}

func testReveals(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	s, dev := withDeveloperAndCatalogue(t, newStore)
	other := &keylens.Developer{Email: "other@example.com"}
	mustCreate(t, s, other)

	portal := &keylens.KeyRequest{ByUser: dev.ID, ApplyPolicies: []string{"pol-token"}, ShowOnce: true}
	api := &keylens.KeyRequest{ByUser: dev.ID, ApplyPolicies: []string{"pol-token"}}
	oauth := &keylens.KeyRequest{ByUser: dev.ID, ApplyPolicies: []string{"pol-oauth"}, ShowOnce: true,
		OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}}
	for _, r := range []*keylens.KeyRequest{portal, api, oauth} {
		if err := s.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.TakeReveals(ctx, dev.ID); err != nil || len(got) != 0 {
		t.Fatalf("before approval: %+v, %v", got, err)
	}
	a1, err := s.ApproveKeyRequest(ctx, portal.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveKeyRequest(ctx, api.ID); err != nil {
		t.Fatal(err)
	}
	a3, err := s.ApproveKeyRequest(ctx, oauth.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.TakeReveals(ctx, other.ID); err != nil || len(got) != 0 {
		t.Errorf("another developer sees %+v, %v", got, err)
	}
	got, err := s.TakeReveals(ctx, dev.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("TakeReveals = %+v, %v; want the two portal requests", got, err)
	}
	if r := got[0]; r.RequestID != portal.ID || r.RawKey != a1.RawKey || r.KeyHash != a1.KeyHash || r.AuthType != keylens.AuthToken ||
		keylens.HashKey(r.RawKey) != r.KeyHash {
		t.Errorf("first reveal %+v, approval %+v", r, a1)
	}
	if r := got[1]; r.AuthType != keylens.AuthOAuth || r.OAuthClient == nil || r.OAuthClient.Secret != a3.OAuthClient.Secret {
		t.Errorf("OAuth reveal %+v", r)
	}
	if again, err := s.TakeReveals(ctx, dev.ID); err != nil || len(again) != 0 {
		t.Errorf("shown twice: %+v, %v", again, err)
	}
}
