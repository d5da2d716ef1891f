// Package storetest is the conformance suite every keylens store backend
// passes. A backend's tests call Run with a constructor of fresh, empty
// stores.
package storetest

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// Store is everything a backend provides.
type Store interface {
	keylens.DeveloperService
	keylens.SettingsService
	keylens.CatalogueService
	keylens.KeyService
	keylens.ChangeService
	keylens.CredentialService
	keylens.TokenService
	keylens.TokenAdminService
	keylens.HitService
	keylens.AdminService
	keylens.SessionService
	keylens.AuditService
	keylens.AccountService
}

// Run runs the whole suite; newStore returns an empty store for each test.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Run("Developers", func(t *testing.T) { testDevelopers(t, newStore) })
	t.Run("Settings", func(t *testing.T) { testSettings(t, newStore) })
	t.Run("CatalogueAndConfig", func(t *testing.T) { testCatalogueAndConfig(t, newStore) })
	t.Run("KeyRequests", func(t *testing.T) { testKeyRequests(t, newStore) })
	t.Run("Changes", func(t *testing.T) { testChanges(t, newStore) })
	t.Run("Rotation", func(t *testing.T) { testRotation(t, newStore) })
	t.Run("Hits", func(t *testing.T) { testHits(t, newStore) })
	t.Run("Admins", func(t *testing.T) { testAdmins(t, newStore) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStore) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, newStore) })
	t.Run("PatchDeveloper", func(t *testing.T) { testPatchDeveloper(t, newStore) })
	t.Run("DeveloperSessions", func(t *testing.T) { testDeveloperSessions(t, newStore) })
	t.Run("ChangePassword", func(t *testing.T) { testChangePassword(t, newStore) })
	t.Run("PasswordReset", func(t *testing.T) { testPasswordReset(t, newStore) })
	t.Run("Reveals", func(t *testing.T) { testReveals(t, newStore) })
	t.Run("Credentials", func(t *testing.T) {
		RunCredentials(t, func(t *testing.T) (Store, Backend) { s := newStore(t); return s, s })
	})
}

const jsonKey = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImQ0NzIzOWUxMjg3NTRjMGM5MTQ4MzYzMjg2YjhlZDQ2IiwiaCI6Im11cm11cjY0In0="

// seedBcrypt is the bcrypt hash from the Tyk documentation's sample.
const seedBcrypt = "$2a$10$hlG1ujAHWUpnM37k.l1RhO6RrxkCpXki2yrGhufnDs1IBiUo4Kzqy"

func testDevelopers(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("CreateThenFindRoundTripsEveryMember", func(t *testing.T) {
		s := newStore(t)
		created := mustTime(t, "2015-05-15T08:56:13.257-04:00")
		in := &keylens.Developer{
			Email:           "Blip@Blop.com",
			DateCreated:     created,
			OrgID:           "53ac07777cbb8c2d53000002",
			Keys:            map[string][]string{"cac572e018c60de0": {"pol1", "pol2"}, "4beaa90b": {}},
			Subscriptions:   map[string]string{"pol1": "cac572e018c60de0"},
			Fields:          map[string]string{"Name": "Mondgo", "custom1": "Test"},
			Nonce:           "n",
			SSOKey:          "sso",
			PasswordMaxDays: 30,
			OAuthClients: map[string][]keylens.OAuthClient{"pol1": {
				{ClientID: "c1", Secret: "s1", RedirectURI: "http://x", AppDescription: "App", UseCase: "Use", DateCreated: created},
				{ClientID: "c2", Secret: "s2"},
			}},
			Password: "secret-password",
		}
		if err := s.CreateDeveloper(ctx, in); err != nil {
			t.Fatal(err)
		}
		if !keylens.IsObjectID(in.ID) {
			t.Fatalf("assigned id %q is not an object id", in.ID)
		}
		got, err := s.FindDeveloperByID(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Email != "Blip@Blop.com" || got.OrgID != in.OrgID || got.Nonce != "n" || got.SSOKey != "sso" || got.PasswordMaxDays != 30 {
			t.Errorf("scalar members differ: %+v", got)
		}
		if !got.DateCreated.Equal(created) || got.DateCreated.Format(time.RFC3339Nano) != "2015-05-15T08:56:13.257-04:00" {
			t.Errorf("date_created = %v, want the client's instant and offset", got.DateCreated)
		}
		if len(got.Keys) != 2 || strings.Join(got.Keys["cac572e018c60de0"], ",") != "pol1,pol2" || got.Keys["4beaa90b"] == nil {
			t.Errorf("keys = %v", got.Keys)
		}
		if got.Subscriptions["pol1"] != "cac572e018c60de0" || len(got.Subscriptions) != 1 {
			t.Errorf("subscriptions = %v", got.Subscriptions)
		}
		if got.Fields["Name"] != "Mondgo" || len(got.Fields) != 2 {
			t.Errorf("fields = %v", got.Fields)
		}
		cs := got.OAuthClients["pol1"]
		if len(cs) != 2 || cs[0].ClientID != "c1" || cs[0].Secret != "s1" || cs[0].RedirectURI != "http://x" ||
			cs[0].AppDescription != "App" || cs[0].UseCase != "Use" || !cs[0].DateCreated.Equal(created) || cs[1].ClientID != "c2" {
			t.Errorf("oauth clients = %+v", got.OAuthClients)
		}
		if got.Password != "" || !strings.HasPrefix(got.PasswordHash, "$2") || got.PasswordHash == "secret-password" {
			t.Errorf("password stored as %q, want a bcrypt hash only", got.PasswordHash)
		}
		if got.PasswordUpdated.IsZero() || len(got.PasswordHistory) != 1 {
			t.Errorf("password_updated = %v, history = %d entries", got.PasswordUpdated, len(got.PasswordHistory))
		}
		byEmail, err := s.FindDeveloperByEmail(ctx, "bLIP@blop.COM")
		if err != nil || byEmail.ID != in.ID {
			t.Errorf("FindDeveloperByEmail ignoring case = %v, %v", byEmail, err)
		}
	})

	t.Run("CreateFillsDefaults", func(t *testing.T) {
		s := newStore(t)
		before := time.Now().Add(-time.Second)
		a := &keylens.Developer{Email: "a@example.com"}
		b := &keylens.Developer{Email: "b@example.com"}
		mustCreate(t, s, a, b)
		if a.DateCreated.Before(before) || a.OrgID == "" || a.OrgID != b.OrgID {
			t.Errorf("defaults: created %v, org %q and %q (want one portal org)", a.DateCreated, a.OrgID, b.OrgID)
		}
		got, _ := s.FindDeveloperByID(ctx, a.ID)
		if got == nil || got.PasswordHash != "" || !got.PasswordUpdated.IsZero() || got.Keys == nil || got.Fields == nil {
			t.Errorf("developer without password or maps read back as %+v", got)
		}
	})

	t.Run("CreateKeepsAGivenIDAndBcryptHash", func(t *testing.T) {
		s := newStore(t)
		d := &keylens.Developer{ID: "554c733a30c55e4b16000002", Email: "x@example.com", Password: seedBcrypt}
		mustCreate(t, s, d)
		got, err := s.FindDeveloperByID(ctx, "554c733a30c55e4b16000002")
		if err != nil {
			t.Fatal(err)
		}
		if got.PasswordHash != seedBcrypt {
			t.Errorf("bcrypt input stored as %q, want it unchanged", got.PasswordHash)
		}
	})

	t.Run("CreateStoresRawKeysAsHashes", func(t *testing.T) {
		s := newStore(t)
		d := &keylens.Developer{Email: "raw@example.com",
			Keys:          map[string][]string{jsonKey: {"p"}},
			Subscriptions: map[string]string{"p": jsonKey}}
		mustCreate(t, s, d)
		got, _ := s.FindDeveloperByID(ctx, d.ID)
		if _, ok := got.Keys["cac572e018c60de0"]; !ok || len(got.Keys) != 1 || got.Subscriptions["p"] != "cac572e018c60de0" {
			t.Errorf("keys = %v, subscriptions = %v; want the raw key filed under its hash", got.Keys, got.Subscriptions)
		}
	})

	t.Run("CreateRejectsAndStoresNothing", func(t *testing.T) {
		s := newStore(t)
		owner := &keylens.Developer{ID: "5e397e714ea461ef1d474efa", Email: "owner@example.com", Keys: map[string][]string{"aaaabbbb": {"p"}}}
		mustCreate(t, s, owner)
		tests := []struct {
			name string
			dev  keylens.Developer
			code string
		}{
			{"missing email", keylens.Developer{}, keylens.EINVALID},
			{"malformed email", keylens.Developer{Email: "not an email"}, keylens.EINVALID},
			{"display-name email", keylens.Developer{Email: "Bob <bob@example.com>"}, keylens.EINVALID},
			{"short password", keylens.Developer{Email: "p@example.com", Password: "12345"}, keylens.EINVALID},
			{"password over bcrypt's 72 bytes", keylens.Developer{Email: "p@example.com", Password: strings.Repeat("x", 73)}, keylens.EINVALID},
			{"malformed id", keylens.Developer{ID: "XYZ", Email: "p@example.com"}, keylens.EINVALID},
			{"empty key id", keylens.Developer{Email: "p@example.com", Keys: map[string][]string{"": {"p"}}}, keylens.EINVALID},
			{"duplicate email ignoring case", keylens.Developer{Email: "OWNER@example.com"}, keylens.ECONFLICT},
			{"duplicate id", keylens.Developer{ID: "5e397e714ea461ef1d474efa", Email: "p@example.com"}, keylens.ECONFLICT},
			{"key of another developer", keylens.Developer{Email: "p@example.com", Keys: map[string][]string{"aaaabbbb": {}}}, keylens.ECONFLICT},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := tt.dev
				if code := keylens.ErrorCode(s.CreateDeveloper(ctx, &d)); code != tt.code {
					t.Errorf("error code %q, want %q", code, tt.code)
				}
				if _, n, _ := s.FindDevelopers(ctx, keylens.DeveloperFilter{}); n != 1 {
					t.Errorf("%d developers stored after a refused create, want 1", n)
				}
			})
		}
	})

	t.Run("FindDevelopersPagesAndFilters", func(t *testing.T) {
		s := newStore(t)
		var ids []string
		for _, email := range []string{"ann@a.io", "bob@b.io", "cat@a.io", "dan_x@b.io", "eve%@a.io"} {
			d := &keylens.Developer{Email: email}
			mustCreate(t, s, d)
			ids = append(ids, d.ID)
		}
		all, n, err := s.FindDevelopers(ctx, keylens.DeveloperFilter{})
		if err != nil || n != 5 || len(all) != 5 {
			t.Fatalf("all: %d of %d, %v", len(all), n, err)
		}
		if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].ID < all[j].ID }) {
			t.Error("developers are not ordered by id")
		}
		page, n, _ := s.FindDevelopers(ctx, keylens.DeveloperFilter{Offset: 2, Limit: 2})
		if n != 5 || len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
			t.Errorf("page 2 of 2 = %v (total %d)", emails(page), n)
		}
		past, n, _ := s.FindDevelopers(ctx, keylens.DeveloperFilter{Offset: 10, Limit: 2})
		if n != 5 || len(past) != 0 || past == nil {
			t.Errorf("past the end: %v (total %d), want an empty, non-nil page", past, n)
		}
		for q, want := range map[string]string{
			"A.IO": "ann@a.io cat@a.io eve%@a.io",
			"_":    "dan_x@b.io",
			"%":    "eve%@a.io",
			"zzz":  "",
		} {
			got, n, _ := s.FindDevelopers(ctx, keylens.DeveloperFilter{EmailContains: q})
			if strings.Join(emails(got), " ") != want || n != len(got) {
				t.Errorf("filter %q = %v (total %d), want %q", q, emails(got), n, want)
			}
		}
	})

	t.Run("UpdateReplacesButKeepsServerMembers", func(t *testing.T) {
		s := newStore(t)
		d := &keylens.Developer{Email: "u@example.com", Password: "first-password",
			Keys: map[string][]string{"aaaabbbb": {"p1"}}, Fields: map[string]string{"a": "1"},
			OAuthClients: map[string][]keylens.OAuthClient{"p1": {{ClientID: "cid"}}}}
		mustCreate(t, s, d)
		orig, _ := s.FindDeveloperByID(ctx, d.ID)

		upd := &keylens.Developer{Email: "U2@example.com", Inactive: true,
			Keys: map[string][]string{"ccccdddd": {"p2"}}, Fields: map[string]string{"b": "2"}}
		if err := s.UpdateDeveloper(ctx, d.ID, upd); err != nil {
			t.Fatal(err)
		}
		got, _ := s.FindDeveloperByID(ctx, d.ID)
		if got.Email != "U2@example.com" || !got.Inactive || len(got.Keys) != 1 || got.Keys["ccccdddd"] == nil ||
			got.Fields["b"] != "2" || len(got.Fields) != 1 || len(got.OAuthClients) != 0 {
			t.Errorf("after replacement: %+v", got)
		}
		if got.PasswordHash != orig.PasswordHash || !got.DateCreated.Equal(orig.DateCreated) || got.OrgID != orig.OrgID {
			t.Error("an update without password, date_created or org_id lost the stored ones")
		}
		// The old key is free again.
		mustCreate(t, s, &keylens.Developer{Email: "other@example.com", Keys: map[string][]string{"aaaabbbb": {}}})

		if err := s.UpdateDeveloper(ctx, d.ID, &keylens.Developer{Email: "U2@example.com", Password: "second-password"}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.FindDeveloperByID(ctx, d.ID)
		if got.PasswordHash == orig.PasswordHash || !keylens.CheckPassword(got.PasswordHash, "second-password") || len(got.PasswordHistory) != 2 {
			t.Errorf("password not replaced (history %d)", len(got.PasswordHistory))
		}
	})

	t.Run("UpdateRejectsAndChangesNothing", func(t *testing.T) {
		s := newStore(t)
		a := &keylens.Developer{Email: "a@example.com", Keys: map[string][]string{"aaaabbbb": {"p"}}}
		b := &keylens.Developer{Email: "b@example.com", Keys: map[string][]string{"ccccdddd": {"p"}}}
		mustCreate(t, s, a, b)
		tests := []struct {
			name string
			id   string
			dev  keylens.Developer
			code string
		}{
			{"unknown id", "000000000000000000000000", keylens.Developer{Email: "n@example.com"}, keylens.ENOTFOUND},
			{"id mismatch", a.ID, keylens.Developer{ID: b.ID, Email: "a@example.com"}, keylens.EINVALID},
			{"invalid email", a.ID, keylens.Developer{Email: "nope"}, keylens.EINVALID},
			{"email of another developer", a.ID, keylens.Developer{Email: "B@example.com"}, keylens.ECONFLICT},
			{"key of another developer", a.ID, keylens.Developer{Email: "a@example.com", Keys: map[string][]string{"ccccdddd": {}}}, keylens.ECONFLICT},
			{"short password", a.ID, keylens.Developer{Email: "a@example.com", Password: "123"}, keylens.EINVALID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d := tt.dev
				if code := keylens.ErrorCode(s.UpdateDeveloper(ctx, tt.id, &d)); code != tt.code {
					t.Errorf("error code %q, want %q", code, tt.code)
				}
				got, _ := s.FindDeveloperByID(ctx, a.ID)
				if got.Email != "a@example.com" || got.Keys["aaaabbbb"] == nil || len(got.Keys) != 1 {
					t.Errorf("developer changed by a refused update: %+v", got)
				}
			})
		}
	})

	t.Run("DeleteRemovesTheDeveloperAndTheirKeys", func(t *testing.T) {
		s := newStore(t)
		d := &keylens.Developer{Email: "d@example.com", Keys: map[string][]string{"aaaabbbb": {}},
			OAuthClients: map[string][]keylens.OAuthClient{"p": {{ClientID: "cid"}}}}
		mustCreate(t, s, d)
		if err := s.DeleteDeveloper(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if code := keylens.ErrorCode(s.DeleteDeveloper(ctx, d.ID)); code != keylens.ENOTFOUND {
			t.Errorf("second delete: %q, want not found", code)
		}
		if _, err := s.FindDeveloperByID(ctx, d.ID); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("find after delete: %v", err)
		}
		// Key, email and OAuth client id are all free again.
		mustCreate(t, s, &keylens.Developer{Email: "d@example.com", Keys: map[string][]string{"aaaabbbb": {}},
			OAuthClients: map[string][]keylens.OAuthClient{"p": {{ClientID: "cid"}}}})
	})

	t.Run("VerifyCredentials", func(t *testing.T) {
		s := newStore(t)
		d := &keylens.Developer{Email: "v@example.com", Password: "right-password"}
		off := &keylens.Developer{Email: "off@example.com", Password: "right-password", Inactive: true}
		none := &keylens.Developer{Email: "none@example.com"}
		mustCreate(t, s, d, off, none)

		got, err := s.VerifyCredentials(ctx, "V@example.com", "right-password")
		if err != nil {
			t.Fatalf("right password: %v", err)
		}
		if got.LastLoginDate.IsZero() {
			t.Error("last_login_date not returned")
		}
		stored, _ := s.FindDeveloperByID(ctx, d.ID)
		if stored.LastLoginDate.IsZero() {
			t.Error("last_login_date not stored")
		}
		for name, c := range map[string][2]string{
			"wrong password":       {"v@example.com", "wrong-password"},
			"unknown email":        {"nobody@example.com", "right-password"},
			"inactive developer":   {"off@example.com", "right-password"},
			"developer without pw": {"none@example.com", ""},
		} {
			if _, err := s.VerifyCredentials(ctx, c[0], c[1]); keylens.ErrorCode(err) != keylens.EUNAUTHORIZED {
				t.Errorf("%s: %v, want unauthorized", name, err)
			}
		}
		if o, _ := s.FindDeveloperByID(ctx, off.ID); !o.LastLoginDate.IsZero() {
			t.Error("a refused login recorded a login date")
		}
	})

	t.Run("SetPassword", func(t *testing.T) {
		s := newStore(t)
		d := &keylens.Developer{Email: "p@example.com", Password: "old-password"}
		mustCreate(t, s, d)
		before, _ := s.FindDeveloperByID(ctx, d.ID)
		if err := s.SetPassword(ctx, d.ID, "new-password"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyCredentials(ctx, "p@example.com", "new-password"); err != nil {
			t.Errorf("new password does not verify: %v", err)
		}
		if _, err := s.VerifyCredentials(ctx, "p@example.com", "old-password"); err == nil {
			t.Error("old password still verifies")
		}
		after, _ := s.FindDeveloperByID(ctx, d.ID)
		if len(after.PasswordHistory) != 2 || after.PasswordHistory[0] != before.PasswordHash || after.PasswordUpdated.Before(before.PasswordUpdated) {
			t.Errorf("history %d entries, updated %v -> %v", len(after.PasswordHistory), before.PasswordUpdated, after.PasswordUpdated)
		}
		for i := 0; i < keylens.PasswordHistoryLength+2; i++ {
			if err := s.SetPassword(ctx, d.ID, seedBcrypt); err != nil {
				t.Fatal(err)
			}
		}
		if after, _ := s.FindDeveloperByID(ctx, d.ID); len(after.PasswordHistory) != keylens.PasswordHistoryLength {
			t.Errorf("history grew to %d, want it capped at %d", len(after.PasswordHistory), keylens.PasswordHistoryLength)
		}
		if code := keylens.ErrorCode(s.SetPassword(ctx, d.ID, "short")); code != keylens.EINVALID {
			t.Errorf("short password: %q", code)
		}
		if code := keylens.ErrorCode(s.SetPassword(ctx, "000000000000000000000000", "long-enough")); code != keylens.ENOTFOUND {
			t.Errorf("unknown developer: %q", code)
		}
	})
}

func testSettings(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.Setting(ctx, "x"); keylens.ErrorCode(err) != keylens.ENOTFOUND {
		t.Errorf("unset setting: %v", err)
	}
	if v, err := s.InitSetting(ctx, "x", "first"); err != nil || v != "first" {
		t.Errorf("InitSetting = %q, %v", v, err)
	}
	if v, err := s.InitSetting(ctx, "x", "second"); err != nil || v != "first" {
		t.Errorf("second InitSetting = %q, %v; want the first value kept", v, err)
	}
	if err := s.PutSetting(ctx, "x", "third"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Setting(ctx, "x"); v != "third" {
		t.Errorf("after PutSetting: %q", v)
	}
}

func mustCreate(t *testing.T, s Store, devs ...*keylens.Developer) {
	t.Helper()
	for _, d := range devs {
		if err := s.CreateDeveloper(context.Background(), d); err != nil {
			t.Fatalf("create %s: %v", d.Email, err)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func emails(devs []*keylens.Developer) []string {
	out := []string{}
	for _, d := range devs {
		out = append(out, d.Email)
	}
	return out
}
