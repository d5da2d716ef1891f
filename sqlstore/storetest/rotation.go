package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// testRotation: a key replaced with a grace period, both resolving until
// it ends, the old one refused from then on and removed; the refusals.
func testRotation(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("BothResolveDuringTheGrace", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-token"}, Fields: map[string]any{"use": "billing"}})
		if err != nil {
			t.Fatal(err)
		}
		last, _ := s.LastChange(ctx)
		before := time.Now()
		rot, err := s.RotateKey(ctx, d.ID, a.KeyHash, keylens.KeyRotation{Grace: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if rot.Replaces != a.KeyHash || rot.KeyHash != keylens.HashKey(rot.RawKey) || rot.KeyHash == a.KeyHash || rot.Password != "" {
			t.Errorf("rotation %+v", rot)
		}
		// The end is a whole second, an hour from now (rounded up).
		if end := rot.OldKeyExpires; end.Nanosecond() != 0 || end.Before(before.Add(time.Hour)) || end.After(time.Now().Add(time.Hour+time.Second)) {
			t.Errorf("old key expires %v, want a whole second an hour after %v", end, before)
		}
		oldC, err := s.ResolveKey(ctx, a.KeyHash)
		if err != nil {
			t.Fatalf("the old key stopped at once: %v", err)
		}
		if !oldC.Key.ExpiresAt.Equal(rot.OldKeyExpires) || oldC.Key.ReplacedBy != rot.KeyHash {
			t.Errorf("old key %+v, want expiry %v and replaced_by %s", oldC.Key, rot.OldKeyExpires, rot.KeyHash)
		}
		newC, err := s.ResolveKey(ctx, rot.KeyHash)
		if err != nil {
			t.Fatal(err)
		}
		k := newC.Key
		if k.DeveloperID != d.ID || strings.Join(k.Policies, ",") != "pol-token" || k.Fields["use"] != "billing" ||
			k.AuthType != keylens.AuthToken || k.RequestID == "" || k.RequestID != oldC.Key.RequestID || !k.ExpiresAt.IsZero() {
			t.Errorf("new key %+v, want the old one's developer, policies, fields and request", k)
		}
		dev, _ := s.FindDeveloperByID(ctx, d.ID)
		if len(dev.Keys) != 2 || dev.Subscriptions["pol-token"] != rot.KeyHash {
			t.Errorf("developer keys %v, subscriptions %v", dev.Keys, dev.Subscriptions)
		}
		if r, _ := s.FindKeyRequestByID(ctx, k.RequestID); r == nil || r.Key != rot.KeyHash {
			t.Errorf("the key request does not name the new key: %+v", r)
		}
		keys, _ := s.FindDeveloperKeys(ctx, d.ID)
		if len(keys) != 2 || keys[0].Hash != a.KeyHash || !keys[0].ExpiresAt.Equal(rot.OldKeyExpires) {
			t.Errorf("developer keys %+v", keys)
		}
		changes, _, _ := s.ChangesSince(ctx, last, 10)
		var kinds []string
		for _, c := range changes {
			kinds = append(kinds, c.Kind+":"+c.KeyHash)
		}
		if got, want := strings.Join(kinds, " "), "key_added:"+rot.KeyHash+" key_rotated:"+a.KeyHash; got != want {
			t.Errorf("changes %q, want %q", got, want)
		}
		entries, _, _ := s.FindAudit(ctx, keylens.AuditFilter{DeveloperID: d.ID, Limit: 1})
		if len(entries) != 1 || entries[0].Action != keylens.AuditKeyRotated || entries[0].ObjectID != a.KeyHash ||
			!strings.Contains(entries[0].Detail, rot.KeyHash) || strings.Contains(entries[0].Detail, rot.RawKey) {
			t.Errorf("audit %+v", entries)
		}
		// A key in its grace is not rotated again; nothing is then stored.
		if _, err := s.RotateKey(ctx, d.ID, a.KeyHash, keylens.KeyRotation{Grace: time.Minute}); keylens.ErrorCode(err) != keylens.ECONFLICT {
			t.Errorf("rotating a key in its grace: %v, want conflict", err)
		}
		if n, _ := s.LastChange(ctx); n != changes[len(changes)-1].Seq {
			t.Error("a refused rotation recorded a change")
		}
		// Its replacement is rotated as any key.
		if _, err := s.RotateKey(ctx, d.ID, rot.KeyHash, keylens.KeyRotation{Grace: time.Minute}); err != nil {
			t.Errorf("rotating the new key: %v", err)
		}
	})

	t.Run("TheOldKeyStopsWhenItsGraceEnds", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-basic"}})
		if err != nil {
			t.Fatal(err)
		}
		rot, err := s.RotateKey(ctx, d.ID, a.KeyHash, keylens.KeyRotation{Grace: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if rot.Password == "" || rot.RawKey == a.RawKey {
			t.Errorf("basic rotation %+v: want a new username and password", rot)
		}
		newC, err := s.ResolveBasicUser(ctx, rot.RawKey)
		if err != nil || newC.Key.Hash != rot.KeyHash || !keylens.CheckPassword(newC.Key.BasicPasswordHash, rot.Password) {
			t.Fatalf("new basic user: %+v, %v", newC, err)
		}
		// Before the end both resolve; from the end on, the old one is
		// refused (by the stored end, whether or not it was removed).
		for {
			_, err := s.ResolveBasicUser(ctx, a.RawKey)
			now := time.Now()
			if err == nil {
				if !now.Before(rot.OldKeyExpires.Add(time.Second)) {
					t.Fatalf("the old key still resolves at %v, a second after its end %v", now, rot.OldKeyExpires)
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if keylens.ErrorCode(err) != keylens.ENOTFOUND {
				t.Fatal(err)
			}
			if now.Before(rot.OldKeyExpires) {
				t.Fatalf("the old key was refused at %v, before its end %v", now, rot.OldKeyExpires)
			}
			break
		}
		if _, err := s.ResolveKey(ctx, a.KeyHash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("the old key by hash after its end: %v", err)
		}
		if _, err := s.ResolveKey(ctx, rot.KeyHash); err != nil {
			t.Errorf("the new key after the old one's end: %v", err)
		}
		last, _ := s.LastChange(ctx)
		n, next, err := s.ExpireKeys(ctx)
		if err != nil || n != 1 || !next.IsZero() {
			t.Fatalf("ExpireKeys = %d, %v, %v; want 1 removed and no grace left", n, next, err)
		}
		changes, _, _ := s.ChangesSince(ctx, last, 10)
		if len(changes) != 1 || changes[0].Kind != keylens.ChangeKeyRevoked || changes[0].KeyHash != a.KeyHash {
			t.Errorf("changes %+v", changes)
		}
		if dev, _ := s.FindDeveloperByID(ctx, d.ID); len(dev.Keys) != 1 || dev.Keys[rot.KeyHash] == nil {
			t.Errorf("developer keys after the grace %v", dev.Keys)
		}
		if n, _, err := s.ExpireKeys(ctx); err != nil || n != 0 {
			t.Errorf("ExpireKeys again = %d, %v", n, err)
		}
		if entries, _, _ := s.FindAudit(ctx, keylens.AuditFilter{DeveloperID: d.ID, Limit: 1}); len(entries) != 1 || entries[0].Action != keylens.AuditKeyExpired {
			t.Errorf("audit %+v", entries)
		}
	})

	t.Run("NoGraceStopsTheOldKeyAtOnce", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-token"}})
		if err != nil {
			t.Fatal(err)
		}
		rot, err := s.RotateKey(ctx, d.ID, a.KeyHash, keylens.KeyRotation{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResolveKey(ctx, a.KeyHash); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("old key after a rotation without grace: %v", err)
		}
		if _, err := s.ResolveKey(ctx, rot.KeyHash); err != nil {
			t.Error(err)
		}
		if _, next, _ := s.ExpireKeys(ctx); !next.IsZero() {
			t.Errorf("a grace is running: %v", next)
		}
	})

	t.Run("JWTKeysVerifyWithTheirOwnMaterial", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-jwt"}, JWTSecret: "an-hmac-secret-of-32-characters!"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RotateKey(ctx, d.ID, a.KeyHash, keylens.KeyRotation{Grace: time.Hour}); keylens.ErrorCode(err) != keylens.EINVALID {
			t.Errorf("a jwt rotation without new material: %v", err)
		}
		rot, err := s.RotateKey(ctx, d.ID, a.KeyHash, keylens.KeyRotation{Grace: time.Hour, JWTSecret: "another-hmac-secret-of-32-bytes!"})
		if err != nil {
			t.Fatal(err)
		}
		oldC, _ := s.ResolveKey(ctx, a.KeyHash)
		newC, _ := s.ResolveKey(ctx, rot.KeyHash)
		if oldC == nil || newC == nil || oldC.Key.JWTSecret != "an-hmac-secret-of-32-characters!" || newC.Key.JWTSecret != "another-hmac-secret-of-32-bytes!" {
			t.Errorf("old %+v new %+v", oldC, newC)
		}
	})

	t.Run("Refusals", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		other := &keylens.Developer{Email: "other@example.com"}
		mustCreate(t, s, other)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-token"}})
		if err != nil {
			t.Fatal(err)
		}
		last, _ := s.LastChange(ctx)
		for name, c := range map[string]struct {
			dev, hash string
			grace     time.Duration
			code      string
		}{
			"unknown key":         {d.ID, "deadbeef", time.Hour, keylens.ENOTFOUND},
			"another's key":       {other.ID, a.KeyHash, time.Hour, keylens.ENOTFOUND},
			"unknown developer":   {"000000000000000000000000", a.KeyHash, time.Hour, keylens.ENOTFOUND},
			"negative grace":      {d.ID, a.KeyHash, -time.Second, keylens.EINVALID},
			"grace over the most": {d.ID, a.KeyHash, keylens.DefaultMaxRotationGrace + time.Second, keylens.EINVALID},
		} {
			if _, err := s.RotateKey(ctx, c.dev, c.hash, keylens.KeyRotation{Grace: c.grace}); keylens.ErrorCode(err) != c.code {
				t.Errorf("%s: %v, want %s", name, err, c.code)
			}
		}
		if n, _ := s.LastChange(ctx); n != last {
			t.Error("a refused rotation recorded a change")
		}
		if _, err := s.RotateKey(ctx, d.ID, a.KeyHash, keylens.KeyRotation{Grace: keylens.DefaultMaxRotationGrace}); err != nil {
			t.Errorf("the longest grace: %v", err)
		}
		dev, _ := s.FindDeveloperByID(ctx, d.ID)
		dev.Inactive = true
		if err := s.UpdateDeveloper(ctx, d.ID, dev); err != nil {
			t.Fatal(err)
		}
		last, _ = s.LastChange(ctx)
		keys, _ := s.FindDeveloperKeys(ctx, d.ID)
		if _, err := s.RotateKey(ctx, d.ID, keys[1].Hash, keylens.KeyRotation{Grace: time.Hour}); keylens.ErrorCode(err) != keylens.EFORBIDDEN {
			t.Errorf("an inactive developer's key: %v, want forbidden", err)
		}
		if n, _ := s.LastChange(ctx); n != last {
			t.Error("a refused rotation recorded a change")
		}
		if after, _ := s.FindDeveloperKeys(ctx, d.ID); len(after) != len(keys) {
			t.Errorf("keys went from %d to %d through refused rotations", len(keys), len(after))
		}
	})

	t.Run("OAuthSecret", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-oauth"},
			OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		id, oldSecret := a.OAuthClient.ClientID, a.OAuthClient.Secret
		n := 0
		issue := func(secret string) error {
			n++
			_, err := s.IssueToken(ctx, keylens.ClientCredentials{ID: id, Secret: secret}, keylens.TokenHashOf(fmt.Sprintf("token-%d", n)), time.Hour)
			return err
		}
		if err := issue(oldSecret); err != nil {
			t.Fatal(err)
		}
		other := &keylens.Developer{Email: "other@example.com"}
		mustCreate(t, s, other)
		for name, c := range map[string]struct {
			dev   string
			grace time.Duration
			code  string
		}{
			"another's client": {other.ID, time.Hour, keylens.ENOTFOUND},
			"grace too long":   {d.ID, keylens.DefaultMaxRotationGrace + time.Hour, keylens.EINVALID},
		} {
			if _, err := s.RotateOAuthSecret(ctx, c.dev, id, c.grace); keylens.ErrorCode(err) != c.code {
				t.Errorf("%s: %v, want %s", name, err, c.code)
			}
		}
		if _, err := s.RotateOAuthSecret(ctx, d.ID, "nope", time.Hour); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("unknown client: %v", err)
		}
		if err := issue(oldSecret); err != nil {
			t.Fatalf("refused rotations changed the secret: %v", err)
		}
		rot, err := s.RotateOAuthSecret(ctx, d.ID, id, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if rot.ClientID != id || rot.Secret == "" || rot.Secret == oldSecret || rot.OldSecretExpires.Nanosecond() != 0 {
			t.Fatalf("rotation %+v", rot)
		}
		if _, err := s.RotateOAuthSecret(ctx, d.ID, id, time.Hour); keylens.ErrorCode(err) != keylens.ECONFLICT {
			t.Errorf("rotating during the grace: %v, want conflict", err)
		}
		// A developer update (read, written back) keeps the grace.
		dev, _ := s.FindDeveloperByID(ctx, d.ID)
		if dev.OAuthClients["pol-oauth"][0].Secret != rot.Secret {
			t.Errorf("the developer shows secret %q, want the new one", dev.OAuthClients["pol-oauth"][0].Secret)
		}
		if err := s.UpdateDeveloper(ctx, d.ID, dev); err != nil {
			t.Fatal(err)
		}
		for {
			errOld, errNew := issue(oldSecret), issue(rot.Secret)
			now := time.Now()
			if errNew != nil {
				t.Fatalf("the new secret: %v", errNew)
			}
			if errOld == nil {
				if now.After(rot.OldSecretExpires.Add(time.Second)) {
					t.Fatalf("the old secret still works at %v, a second after its end %v", now, rot.OldSecretExpires)
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if !errors.Is(errOld, keylens.ErrInvalidClient) {
				t.Fatal(errOld)
			}
			if now.Before(rot.OldSecretExpires) {
				t.Fatalf("the old secret was refused at %v, before its end %v", now, rot.OldSecretExpires)
			}
			break
		}
		// No grace: the old secret stops at once.
		rot2, err := s.RotateOAuthSecret(ctx, d.ID, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := issue(rot.Secret); !errors.Is(err, keylens.ErrInvalidClient) {
			t.Errorf("the secret replaced without grace: %v", err)
		}
		if err := issue(rot2.Secret); err != nil {
			t.Error(err)
		}
		// A rotation without grace during another's grace ends both old
		// secrets at once (a leak found after a rotation with grace).
		rot3, err := s.RotateOAuthSecret(ctx, d.ID, id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		rot4, err := s.RotateOAuthSecret(ctx, d.ID, id, 0)
		if err != nil {
			t.Fatalf("a rotation without grace during a grace: %v", err)
		}
		for _, old := range []string{rot2.Secret, rot3.Secret} {
			if err := issue(old); !errors.Is(err, keylens.ErrInvalidClient) {
				t.Errorf("a secret replaced by a rotation without grace: %v", err)
			}
		}
		if err := issue(rot4.Secret); err != nil {
			t.Error(err)
		}
	})
}
