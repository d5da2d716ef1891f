package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

func testAdmins(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("CreateFindVerify", func(t *testing.T) {
		s := newStore(t)
		a := &keylens.Admin{Email: "Root@Example.com", Password: "correct-horse-battery"}
		if err := s.CreateAdmin(ctx, a); err != nil {
			t.Fatal(err)
		}
		if !keylens.IsObjectID(a.ID) || a.Password != "" || !strings.HasPrefix(a.PasswordHash, "$2") {
			t.Fatalf("created admin %+v: want an object id and only a bcrypt hash", a)
		}
		got, err := s.FindAdminByID(ctx, a.ID)
		if err != nil || got.Email != "Root@Example.com" || got.Disabled || got.DateCreated.IsZero() {
			t.Fatalf("FindAdminByID = %+v, %v", got, err)
		}
		v, err := s.VerifyAdmin(ctx, "root@example.COM", "correct-horse-battery")
		if err != nil || v.ID != a.ID || v.LastLogin.IsZero() {
			t.Fatalf("VerifyAdmin with the right password = %+v, %v", v, err)
		}
		for name, c := range map[string][2]string{
			"WrongPassword": {"root@example.com", "correct-horse-batterY"},
			"UnknownEmail":  {"nobody@example.com", "correct-horse-battery"},
			"EmptyPassword": {"root@example.com", ""},
		} {
			if _, err := s.VerifyAdmin(ctx, c[0], c[1]); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
				t.Errorf("%s: VerifyAdmin = %v, want EUNAUTHORIZED", name, err)
			}
		}
		all, err := s.FindAdmins(ctx)
		if err != nil || len(all) != 1 || all[0].ID != a.ID {
			t.Fatalf("FindAdmins = %v, %v", all, err)
		}
	})

	t.Run("Rules", func(t *testing.T) {
		s := newStore(t)
		if err := s.CreateAdmin(ctx, &keylens.Admin{Email: "a@example.com", Password: "short-pw"}); keylens.ErrorCode(err) != keylens.EINVALID {
			t.Errorf("password under %d characters: %v, want EINVALID", keylens.MinAdminPasswordLength, err)
		}
		if err := s.CreateAdmin(ctx, &keylens.Admin{Email: "not an email", Password: "long-enough-password"}); keylens.ErrorCode(err) != keylens.EINVALID {
			t.Errorf("bad email: %v, want EINVALID", err)
		}
		if err := s.CreateAdmin(ctx, &keylens.Admin{Email: "a@example.com", Password: "long-enough-password"}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAdmin(ctx, &keylens.Admin{Email: "A@EXAMPLE.com", Password: "long-enough-password"}); keylens.ErrorCode(err) != keylens.ECONFLICT {
			t.Errorf("email taken ignoring case: %v, want ECONFLICT", err)
		}
		if err := s.SetAdminDisabled(ctx, keylens.NewObjectID(time.Now()), true); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("disable an unknown admin: %v, want ENOTFOUND", err)
		}
		if err := s.DeleteAdmin(ctx, keylens.NewObjectID(time.Now())); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("delete an unknown admin: %v, want ENOTFOUND", err)
		}
	})

	t.Run("DisabledCannotSignInAndLosesSessions", func(t *testing.T) {
		s := newStore(t)
		a := &keylens.Admin{Email: "b@example.com", Password: "long-enough-password"}
		if err := s.CreateAdmin(ctx, a); err != nil {
			t.Fatal(err)
		}
		_, hash := keylens.NewSessionID()
		now := time.Now()
		if err := s.CreateSession(ctx, &keylens.Session{IDHash: hash, AdminID: a.ID, Created: now, LastSeen: now}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.FindSession(ctx, hash); err != nil || got.AdminID != a.ID || got.Email != a.Email {
			t.Fatalf("FindSession = %+v, %v", got, err)
		}
		if err := s.SetAdminDisabled(ctx, a.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyAdmin(ctx, a.Email, "long-enough-password"); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
			t.Errorf("a disabled admin signs in: %v", err)
		}
		if _, err := s.FindSession(ctx, hash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("a disabled admin's session still found: %v", err)
		}
		// A session created while disabled (a race with sign-in) is
		// not found either.
		if err := s.CreateSession(ctx, &keylens.Session{IDHash: hash, AdminID: a.ID, Created: now, LastSeen: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindSession(ctx, hash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("a disabled admin's session found: %v", err)
		}
		if err := s.SetAdminDisabled(ctx, a.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyAdmin(ctx, a.Email, "long-enough-password"); err != nil {
			t.Errorf("enabled again, cannot sign in: %v", err)
		}
		if err := s.DeleteAdmin(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindSession(ctx, hash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("a deleted admin's session still found: %v", err)
		}
		if _, err := s.FindAdminByID(ctx, a.ID); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("deleted admin found: %v", err)
		}
	})
}

func testSessions(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	s := newStore(t)
	now := time.Unix(time.Now().Unix(), 0)
	id, hash := keylens.NewSessionID()
	if len(id) != 43 || hash != keylens.SessionHash(id) || hash == id {
		t.Fatalf("NewSessionID = %q, %q: want 256 bits in base64url and a different stored hash", id, hash)
	}
	key := &keylens.Session{IDHash: hash, AdminKey: "fp", Created: now, LastSeen: now}
	if err := s.CreateSession(ctx, key); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindSession(ctx, hash)
	if err != nil || got.AdminID != "" || got.AdminKey != "fp" || !got.Created.Equal(now) || !got.LastSeen.Equal(now) {
		t.Fatalf("admin key session read back as %+v, %v", got, err)
	}
	if _, err := s.FindSession(ctx, keylens.SessionHash(id+"x")); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("unknown session: %v", err)
	}
	later := now.Add(10 * time.Minute)
	if err := s.TouchSession(ctx, hash, later); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindSession(ctx, hash); got == nil || !got.LastSeen.Equal(later) {
		t.Errorf("touched session: %+v", got)
	}
	if err := s.TouchSession(ctx, hash, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindSession(ctx, hash); got == nil || !got.LastSeen.Equal(later) {
		t.Errorf("a touch with an older time moved last-seen back: %+v", got)
	}

	_, idle := keylens.NewSessionID()
	_, old := keylens.NewSessionID()
	t0 := now.Add(-keylens.SessionMaxAge)
	for _, sess := range []*keylens.Session{
		{IDHash: idle, AdminKey: "fp", Created: now.Add(-time.Hour), LastSeen: now.Add(-keylens.SessionIdleTimeout)},
		{IDHash: old, AdminKey: "fp", Created: t0, LastSeen: now},
	} {
		if !sess.Expired(now) {
			t.Errorf("session %+v should have expired at %v", sess, now)
		}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteExpiredSessions(ctx, now); err != nil || n != 2 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want the idle and the old one", n, err)
	}
	if _, err := s.FindSession(ctx, hash); err != nil {
		t.Errorf("the live session went too: %v", err)
	}
	if err := s.DeleteSession(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindSession(ctx, hash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("signed-out session found: %v", err)
	}
	if err := s.DeleteSession(ctx, hash); err != nil {
		t.Errorf("deleting a gone session: %v", err)
	}
}

func testAudit(t *testing.T, newStore func(t *testing.T) Store) {
	s, d := withDeveloperAndCatalogue(t, newStore)
	alice := keylens.Actor{ID: keylens.NewObjectID(time.Now()), Name: "alice@example.com", Via: keylens.ViaConsole}
	ctx := keylens.WithActor(context.Background(), alice)
	api := keylens.WithActor(context.Background(), keylens.Actor{Name: keylens.ActorAdminKey, Via: keylens.ViaAPI})

	other := &keylens.Developer{Email: "other@example.com"}
	if err := s.CreateDeveloper(api, other); err != nil {
		t.Fatal(err)
	}
	a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-token"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKeyPolicies(ctx, d.ID, a.KeyHash, []string{"pol-token-2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ResetKeyQuota(ctx, d.ID, a.KeyHash); err != nil {
		t.Fatal(err)
	}
	r := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-token"}}
	if err := s.CreateKeyRequest(api, r); err != nil {
		t.Fatal(err)
	}
	a2, err := s.ApproveKeyRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	r2 := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-token"}, Fields: map[string]any{"Use": "x"}}
	if err := s.CreateKeyRequest(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateKeyRequest(ctx, r2.ID, &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-token-2"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKeyRequest(ctx, r2.ID); err != nil {
		t.Fatal(err)
	}
	oa, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-oauth"}, OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOAuthClient(ctx, oa.OAuthClient.ClientID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, d.ID, a.KeyHash); err != nil {
		t.Fatal(err)
	}
	inactive := true
	if _, err := s.PatchDeveloper(ctx, d.ID, keylens.DeveloperPatch{Inactive: &inactive, Fields: map[string]string{"Company": "Acme", "Name": "Ada"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPassword(ctx, d.ID, "new-password"); err != nil {
		t.Fatal(err)
	}
	cat := testCatalogue()
	cat.APIs = cat.APIs[1:]
	cat.APIs[0].Name = "Renamed"
	cat.APIs = append(cat.APIs, keylens.CatalogueEntry{Name: "New", PolicyID: "pol-new"})
	if err := s.PutCatalogue(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPortalConfig(ctx, &keylens.PortalConfig{RequireKeyApproval: true, KeyRequestFields: []string{"Use case"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeveloper(api, other.ID); err != nil {
		t.Fatal(err)
	}
	admin := &keylens.Admin{Email: "bob@example.com", Password: "long-enough-password"}
	if err := s.CreateAdmin(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminDisabled(ctx, admin.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminDisabled(ctx, admin.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAdmin(ctx, admin.ID); err != nil {
		t.Fatal(err)
	}

	all, total, err := s.FindAudit(context.Background(), keylens.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(all) {
		t.Fatalf("total %d, %d entries", total, len(all))
	}
	type want struct{ action, actor, via, objectType, objectID, developer, detail string }
	wants := []want{ // newest first
		{keylens.AuditAdminDeleted, alice.Name, keylens.ViaConsole, keylens.ObjectAdmin, admin.ID, "", "bob@example.com"},
		{keylens.AuditAdminEnabled, alice.Name, keylens.ViaConsole, keylens.ObjectAdmin, admin.ID, "", "bob@example.com"},
		{keylens.AuditAdminDisabled, alice.Name, keylens.ViaConsole, keylens.ObjectAdmin, admin.ID, "", "bob@example.com"},
		{keylens.AuditAdminCreated, alice.Name, keylens.ViaConsole, keylens.ObjectAdmin, admin.ID, "", "bob@example.com"},
		{keylens.AuditDeveloperDeleted, keylens.ActorAdminKey, keylens.ViaAPI, keylens.ObjectDeveloper, other.ID, other.ID, "other@example.com, with 0 keys"},
		{keylens.AuditConfigUpdated, alice.Name, keylens.ViaConsole, keylens.ObjectConfiguration, "", "", "require key approval false → true; key request fields: Use case"},
		{keylens.AuditCatalogueUpdated, alice.Name, keylens.ViaConsole, keylens.ObjectCatalogue, "", "", "published pol-new; withdrew pol-token; edited pol-token-2"},
		{keylens.AuditDeveloperPassword, alice.Name, keylens.ViaConsole, keylens.ObjectDeveloper, d.ID, d.ID, d.Email},
		{keylens.AuditDeveloperUpdated, alice.Name, keylens.ViaConsole, keylens.ObjectDeveloper, d.ID, d.ID, "fields Name; deactivated"},
		{keylens.AuditKeyRevoked, alice.Name, keylens.ViaConsole, keylens.ObjectKey, a.KeyHash, d.ID, ""},
		{keylens.AuditOAuthClientDeleted, alice.Name, keylens.ViaConsole, keylens.ObjectOAuthClient, oa.OAuthClient.ClientID, d.ID, ""},
		{keylens.AuditKeyIssued, alice.Name, keylens.ViaConsole, keylens.ObjectOAuthClient, oa.OAuthClient.ClientID, d.ID, "OAuth client " + oa.OAuthClient.ClientID + " for pol-oauth"},
		{keylens.AuditKeyRequestDeleted, alice.Name, keylens.ViaConsole, keylens.ObjectKeyRequest, r2.ID, d.ID, "pending, policies pol-token-2"},
		{keylens.AuditKeyRequestUpdated, alice.Name, keylens.ViaConsole, keylens.ObjectKeyRequest, r2.ID, d.ID, "policies pol-token-2"},
		{keylens.AuditKeyRequestCreated, alice.Name, keylens.ViaConsole, keylens.ObjectKeyRequest, r2.ID, d.ID, "policies pol-token"},
		{keylens.AuditKeyRequestApproved, alice.Name, keylens.ViaConsole, keylens.ObjectKeyRequest, r.ID, d.ID, "key " + a2.KeyHash + " for pol-token"},
		{keylens.AuditKeyRequestCreated, keylens.ActorAdminKey, keylens.ViaAPI, keylens.ObjectKeyRequest, r.ID, d.ID, "policies pol-token"},
		{keylens.AuditKeyQuotaReset, alice.Name, keylens.ViaConsole, keylens.ObjectKey, a.KeyHash, d.ID, ""},
		{keylens.AuditKeyPolicies, alice.Name, keylens.ViaConsole, keylens.ObjectKey, a.KeyHash, d.ID, "pol-token → pol-token-2"},
		{keylens.AuditKeyIssued, alice.Name, keylens.ViaConsole, keylens.ObjectKey, a.KeyHash, d.ID, "key " + a.KeyHash + " for pol-token"},
		{keylens.AuditDeveloperCreated, keylens.ActorAdminKey, keylens.ViaAPI, keylens.ObjectDeveloper, other.ID, other.ID, "other@example.com"},
		{keylens.AuditDeveloperCreated, "", "", keylens.ObjectDeveloper, d.ID, d.ID, d.Email},
		{keylens.AuditCatalogueUpdated, "", "", keylens.ObjectCatalogue, "", "", "published pol-token, pol-token-2, pol-basic, pol-oauth, pol-jwt"},
	}
	if len(all) != len(wants) {
		for _, e := range all {
			t.Logf("%+v", e)
		}
		t.Fatalf("%d audit entries, want %d", len(all), len(wants))
	}
	for i, w := range wants {
		e := all[i]
		if e.Action != w.action || e.Actor != w.actor || e.Via != w.via || e.ObjectType != w.objectType ||
			(w.objectID != "" && e.ObjectID != w.objectID) || e.DeveloperID != w.developer || e.Detail != w.detail {
			t.Errorf("entry %d = %+v\nwant %+v", i, e, w)
		}
		if e.Time.IsZero() || time.Since(e.Time) > time.Minute || (i > 0 && e.Seq >= all[i-1].Seq) {
			t.Errorf("entry %d: time %v, seq %d: want recent, newest first", i, e.Time, e.Seq)
		}
		if w.actor == alice.Name && e.ActorID != alice.ID {
			t.Errorf("entry %d: actor id %q, want %q", i, e.ActorID, alice.ID)
		}
	}
	for _, e := range all {
		if strings.Contains(e.Detail, a.RawKey) || strings.Contains(e.Detail, a2.RawKey) || strings.Contains(e.Detail, oa.OAuthClient.Secret) {
			t.Errorf("entry %+v holds a secret", e)
		}
	}

	page, total, err := s.FindAudit(context.Background(), keylens.AuditFilter{DeveloperID: d.ID, Offset: 2, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var forDev []keylens.AuditEntry
	for _, e := range all {
		if e.DeveloperID == d.ID {
			forDev = append(forDev, e)
		}
	}
	if total != len(forDev) || len(page) != 3 || page[0].Seq != forDev[2].Seq || page[2].Seq != forDev[4].Seq {
		t.Errorf("developer filter, page 2..4: total %d (want %d), %+v", total, len(forDev), page)
	}
	if deleted, n, err := s.FindAudit(context.Background(), keylens.AuditFilter{DeveloperID: other.ID}); err != nil || n != 2 || len(deleted) != 2 ||
		deleted[0].DeveloperEmail != "" {
		t.Errorf("a deleted developer's trail: %d entries, %v; want created and deleted, without an email", n, err)
	}
	for _, e := range page {
		if e.DeveloperEmail != d.Email {
			t.Errorf("entry %d: developer email %q, want the current %q", e.Seq, e.DeveloperEmail, d.Email)
		}
	}
}

func testPatchDeveloper(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	s, d := withDeveloperAndCatalogue(t, newStore)
	// A key issued after the admin opened the form survives the patch.
	a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-token"}})
	if err != nil {
		t.Fatal(err)
	}
	email := "  renamed@example.com "
	got, err := s.PatchDeveloper(ctx, d.ID, keylens.DeveloperPatch{Email: &email, Fields: map[string]string{"Name": "Ada"}, Password: "a-new-password"})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.FindDeveloperByID(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []*keylens.Developer{got, stored} {
		if dev.Email != "renamed@example.com" || len(dev.Fields) != 1 || dev.Fields["Name"] != "Ada" || dev.Keys[a.KeyHash] == nil ||
			dev.Subscriptions["pol-token"] != a.KeyHash || dev.Inactive {
			t.Errorf("patched developer %+v", dev)
		}
	}
	if !keylens.CheckPassword(stored.PasswordHash, "a-new-password") || len(stored.PasswordHistory) != 1 {
		t.Errorf("new password not stored (history %d)", len(stored.PasswordHistory))
	}
	if _, err := s.FindDeveloperByEmail(ctx, "dev@example.com"); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("old email still found: %v", err)
	}
	// Nothing named: nothing changes.
	if _, err := s.PatchDeveloper(ctx, d.ID, keylens.DeveloperPatch{}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.FindDeveloperByID(ctx, d.ID); again == nil || again.PasswordHash != stored.PasswordHash || again.Fields["Name"] != "Ada" {
		t.Errorf("an empty patch changed %+v", again)
	}
	other := &keylens.Developer{Email: "taken@example.com"}
	mustCreate(t, s, other)
	taken := "TAKEN@example.com"
	if _, err := s.PatchDeveloper(ctx, d.ID, keylens.DeveloperPatch{Email: &taken}); keylens.ErrorCode(err) != keylens.ECONFLICT {
		t.Errorf("patch to a taken email: %v, want ECONFLICT", err)
	}
	bad := "not an email"
	if _, err := s.PatchDeveloper(ctx, d.ID, keylens.DeveloperPatch{Email: &bad}); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("patch to a bad email: %v, want EINVALID", err)
	}
	if _, err := s.PatchDeveloper(ctx, d.ID, keylens.DeveloperPatch{Password: "short"}); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("patch to a short password: %v, want EINVALID", err)
	}
	if _, err := s.PatchDeveloper(ctx, keylens.NewObjectID(time.Now()), keylens.DeveloperPatch{}); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("patch an unknown developer: %v, want ENOTFOUND", err)
	}

	keys, err := s.FindDeveloperKeys(ctx, d.ID)
	if err != nil || len(keys) != 1 || keys[0].Hash != a.KeyHash || keys[0].AuthType != keylens.AuthToken ||
		keys[0].Policies[0] != "pol-token" || keys[0].DateCreated.IsZero() {
		t.Fatalf("FindDeveloperKeys = %+v, %v", keys, err)
	}
	basic, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-basic"}})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ = s.FindDeveloperKeys(ctx, d.ID)
	if len(keys) != 2 || keys[1].Hash != basic.KeyHash || keys[1].BasicUsername != basic.RawKey || keys[1].BasicPasswordHash != "" {
		t.Errorf("FindDeveloperKeys with a basic key = %+v (want no password hash)", keys)
	}
	if none, err := s.FindDeveloperKeys(ctx, other.ID); err != nil || none == nil || len(none) != 0 {
		t.Errorf("keys of a developer without any: %v, %v", none, err)
	}
}
