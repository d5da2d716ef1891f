package storetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// testCatalogue publishes one policy of each auth type.
func testCatalogue() *keylens.Catalogue {
	return &keylens.Catalogue{APIs: []keylens.CatalogueEntry{
		{Name: "Token API", PolicyID: "pol-token", AuthType: keylens.AuthToken, Show: true},
		{Name: "Token API 2", PolicyID: "pol-token-2"}, // auth type defaults to authToken
		{Name: "Basic API", PolicyID: "pol-basic", AuthType: keylens.AuthBasic},
		{Name: "OAuth API", PolicyID: "pol-oauth", AuthType: keylens.AuthOAuth},
		{Name: "JWT API", PolicyID: "pol-jwt", AuthType: keylens.AuthJWT},
	}}
}

// withDeveloperAndCatalogue returns a store with testCatalogue and one
// developer.
func withDeveloperAndCatalogue(t *testing.T, newStore func(t *testing.T) Store) (Store, *keylens.Developer) {
	t.Helper()
	s := newStore(t)
	if err := s.PutCatalogue(context.Background(), testCatalogue()); err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "dev@example.com", Fields: map[string]string{"Company": "Acme"}}
	mustCreate(t, s, d)
	return s, d
}

func testCatalogueAndConfig(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("EmptyCatalogueByDefault", func(t *testing.T) {
		s := newStore(t)
		c, err := s.Catalogue(ctx)
		if err != nil || c.APIs == nil || len(c.APIs) != 0 {
			t.Fatalf("default catalogue %+v, %v", c, err)
		}
	})
	t.Run("PutAndGet", func(t *testing.T) {
		s := newStore(t)
		in := testCatalogue()
		in.APIs[0].Config = json.RawMessage(`{"require_key_approval":true}`)
		if err := s.PutCatalogue(ctx, in); err != nil {
			t.Fatal(err)
		}
		c, err := s.Catalogue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID == "" || c.OrgID == "" || len(c.APIs) != 5 || c.APIs[1].AuthType != keylens.AuthToken ||
			string(c.APIs[0].Config) != `{"require_key_approval":true}` || string(c.APIs[1].Fields) != `{}` {
			t.Errorf("catalogue read back as %+v", c)
		}
		id := c.ID
		if err := s.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{{PolicyID: "only"}}}); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.Catalogue(ctx); c.ID != id || len(c.APIs) != 1 {
			t.Errorf("replacement: id %s (was %s), %d entries", c.ID, id, len(c.APIs))
		}
	})
	t.Run("RejectsBadEntries", func(t *testing.T) {
		s := newStore(t)
		for name, c := range map[string]*keylens.Catalogue{
			"unknown auth type": {APIs: []keylens.CatalogueEntry{{PolicyID: "p", AuthType: "hmac"}}},
			"no policy":         {APIs: []keylens.CatalogueEntry{{Name: "x"}}},
			"policy twice":      {APIs: []keylens.CatalogueEntry{{PolicyID: "p"}, {PolicyID: "p"}}},
			"config not object": {APIs: []keylens.CatalogueEntry{{PolicyID: "p", Config: json.RawMessage(`[1]`)}}},
		} {
			if code := keylens.ErrorCode(s.PutCatalogue(ctx, c)); code != keylens.EINVALID {
				t.Errorf("%s: %q", name, code)
			}
		}
		if c, _ := s.Catalogue(ctx); len(c.APIs) != 0 {
			t.Error("a refused catalogue was stored")
		}
	})
	t.Run("PortalConfigKeepsUnknownMembers", func(t *testing.T) {
		s := newStore(t)
		def, err := s.PortalConfig(ctx)
		if err != nil || def.RequireKeyApproval {
			t.Fatalf("default config %+v, %v", def, err)
		}
		var p keylens.PortalConfig
		if err := json.Unmarshal([]byte(`{"require_key_approval":true,"signup_fields":["Company"],"key_request_fields":["Use case"],"redirect_to":"/x","oauth_usage_limit":-1}`), &p); err != nil {
			t.Fatal(err)
		}
		if err := s.PutPortalConfig(ctx, &p); err != nil {
			t.Fatal(err)
		}
		got, _ := s.PortalConfig(ctx)
		b, _ := json.Marshal(got)
		for _, want := range []string{`"require_key_approval":true`, `"signup_fields":["Company"]`, `"key_request_fields":["Use case"]`, `"redirect_to":"/x"`, `"oauth_usage_limit":-1`, `"org_id":"`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("config %s lacks %s", b, want)
			}
		}
	})
}

func testKeyRequests(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()

	t.Run("CreateFindListUpdateDelete", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		r := &keylens.KeyRequest{ByUser: d.ID, ForPlan: "pol-token", Fields: map[string]any{"Use case": "billing", "n": 3.0}}
		if err := s.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if !keylens.IsObjectID(r.ID) || len(r.ApplyPolicies) != 1 || r.ApplyPolicies[0] != "pol-token" || r.Version != "v2" || r.Approved {
			t.Errorf("created request %+v", r)
		}
		got, err := s.FindKeyRequestByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PortalDeveloper == nil || got.PortalDeveloper.ID != d.ID || got.CatalogueEntry == nil ||
			got.CatalogueEntry.PolicyID != "pol-token" || len(got.Catalogues) != 1 || got.Fields["Use case"] != "billing" {
			t.Errorf("found request %+v", got)
		}
		r2 := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-basic", "pol-token-2"}}
		if err := s.CreateKeyRequest(ctx, r2); err != nil {
			t.Fatal(err)
		}
		if r2.ForPlan != "pol-basic" {
			t.Errorf("for_plan not filled from apply_policies: %q", r2.ForPlan)
		}
		if _, err := s.ApproveKeyRequest(ctx, r2.ID); err != nil {
			t.Fatal(err)
		}
		yes, no := true, false
		all, n, _ := s.FindKeyRequests(ctx, keylens.KeyRequestFilter{})
		approved, _, _ := s.FindKeyRequests(ctx, keylens.KeyRequestFilter{Approved: &yes})
		pending, _, _ := s.FindKeyRequests(ctx, keylens.KeyRequestFilter{Approved: &no})
		if n != 2 || len(all) != 2 || len(approved) != 1 || approved[0].ID != r2.ID || len(pending) != 1 || pending[0].ID != r.ID {
			t.Errorf("lists: all %d/%d, approved %d, pending %d", len(all), n, len(approved), len(pending))
		}
		if all[0].PortalDeveloper == nil {
			t.Error("list items lack the embedded developer")
		}

		upd := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-token-2"}, Fields: map[string]any{"Use case": "search"}, Approved: true}
		if err := s.UpdateKeyRequest(ctx, r.ID, upd); err != nil {
			t.Fatal(err)
		}
		got, _ = s.FindKeyRequestByID(ctx, r.ID)
		if got.ForPlan != "pol-token-2" || got.Fields["Use case"] != "search" || got.Approved {
			t.Errorf("after update %+v (a client must not approve by update)", got)
		}
		if err := s.DeleteKeyRequest(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindKeyRequestByID(ctx, r.ID); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("after delete: %v", err)
		}
		if code := keylens.ErrorCode(s.DeleteKeyRequest(ctx, r.ID)); code != keylens.ENOTFOUND {
			t.Errorf("second delete %q", code)
		}
	})

	t.Run("CreateRejects", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		for name, r := range map[string]*keylens.KeyRequest{
			"unknown developer": {ByUser: "000000000000000000000000", ForPlan: "pol-token"},
			"no developer":      {ForPlan: "pol-token"},
			"no policy":         {ByUser: d.ID},
			"unknown policy":    {ByUser: d.ID, ApplyPolicies: []string{"pol-token", "pol-nope"}},
		} {
			if code := keylens.ErrorCode(s.CreateKeyRequest(ctx, r)); code != keylens.EINVALID {
				t.Errorf("%s: %q", name, code)
			}
		}
		if _, n, _ := s.FindKeyRequests(ctx, keylens.KeyRequestFilter{}); n != 0 {
			t.Errorf("%d requests stored after refusals", n)
		}
	})

	t.Run("ApproveAuthToken", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		r := &keylens.KeyRequest{ByUser: d.ID, ApplyPolicies: []string{"pol-token", "pol-token-2"}, Fields: map[string]any{"Use case": "billing"}}
		if err := s.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		a, err := s.ApproveKeyRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if keylens.KeyOrg(a.RawKey) != d.OrgID || keylens.KeyHashAlgorithm(a.RawKey) != keylens.DefaultHashAlgorithm || a.Password != "" {
			t.Errorf("raw key %q: org %q, h %q", a.RawKey, keylens.KeyOrg(a.RawKey), keylens.KeyHashAlgorithm(a.RawKey))
		}
		hash := keylens.HashKey(a.RawKey)
		if a.KeyHash != hash {
			t.Errorf("approval key hash %s, want %s", a.KeyHash, hash)
		}
		dev, _ := s.FindDeveloperByID(ctx, d.ID)
		if strings.Join(dev.Keys[hash], ",") != "pol-token,pol-token-2" || dev.Subscriptions["pol-token"] != hash || dev.Subscriptions["pol-token-2"] != hash {
			t.Errorf("developer keys %v, subscriptions %v", dev.Keys, dev.Subscriptions)
		}
		k, err := s.FindKey(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		if k.DeveloperID != d.ID || k.AuthType != keylens.AuthToken || k.RequestID != r.ID || k.Fields["Use case"] != "billing" || k.DateCreated.IsZero() {
			t.Errorf("key %+v", k)
		}
		got, _ := s.FindKeyRequestByID(ctx, r.ID)
		if !got.Approved || got.Key != hash {
			t.Errorf("request after approval: approved %v key %q", got.Approved, got.Key)
		}
		// Approving twice never makes a second key.
		if _, err := s.ApproveKeyRequest(ctx, r.ID); keylens.ErrorCode(err) != keylens.ECONFLICT {
			t.Errorf("second approval: %v", err)
		}
		if dev, _ := s.FindDeveloperByID(ctx, d.ID); len(dev.Keys) != 1 {
			t.Errorf("%d keys after a second approval", len(dev.Keys))
		}
		if _, err := s.ApproveKeyRequest(ctx, "000000000000000000000000"); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("unknown request: %v", err)
		}
	})

	t.Run("ApproveBasic", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-basic"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.RawKey) != 10 || len(a.Password) < 12 {
			t.Errorf("basic credentials %q / %q", a.RawKey, a.Password)
		}
		k, err := s.FindKeyByBasicUsername(ctx, a.RawKey)
		if err != nil {
			t.Fatal(err)
		}
		if k.Hash != keylens.HashKey(keylens.KeyFor(d.OrgID, a.RawKey, keylens.DefaultHashAlgorithm)) {
			t.Errorf("basic key hash %s is not the gateway's hash of (org, username)", k.Hash)
		}
		if !keylens.CheckPassword(k.BasicPasswordHash, a.Password) || k.BasicPasswordHash == a.Password {
			t.Error("basic password not stored as a matching bcrypt hash")
		}
		// A PUT of the developer that keeps the key keeps what approval stored.
		dev, _ := s.FindDeveloperByID(ctx, d.ID)
		dev.Fields = map[string]string{"Company": "Acme 2"}
		if err := s.UpdateDeveloper(ctx, d.ID, dev); err != nil {
			t.Fatal(err)
		}
		if k2, err := s.FindKey(ctx, k.Hash); err != nil || k2.BasicUsername != a.RawKey || k2.BasicPasswordHash != k.BasicPasswordHash || k2.AuthType != keylens.AuthBasic {
			t.Errorf("key after developer PUT: %+v, %v", k2, err)
		}
	})

	t.Run("ApproveOAuth", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-oauth"},
			Fields: map[string]any{"oauth_app_description": "My App", "oauth_use_case": "Sync"}, OAuthInfo: keylens.OAuthInfo{RedirectURI: "https://app.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		c := a.OAuthClient
		if c == nil || len(c.ClientID) != 32 || c.Secret == "" || c.RedirectURI != "https://app.example.com/cb" || a.PolicyID != "pol-oauth" || a.RawKey != "" {
			t.Fatalf("oauth approval %+v", a)
		}
		dev, _ := s.FindDeveloperByID(ctx, d.ID)
		got := dev.OAuthClients["pol-oauth"]
		if len(got) != 1 || got[0].ClientID != c.ClientID || got[0].AppDescription != "My App" || got[0].UseCase != "Sync" || len(dev.Keys) != 0 {
			t.Errorf("developer oauth clients %+v, keys %v", dev.OAuthClients, dev.Keys)
		}
		if err := s.DeleteOAuthClient(ctx, c.ClientID); err != nil {
			t.Fatal(err)
		}
		if dev, _ := s.FindDeveloperByID(ctx, d.ID); len(dev.OAuthClients) != 0 {
			t.Errorf("client survived deletion: %+v", dev.OAuthClients)
		}
		if code := keylens.ErrorCode(s.DeleteOAuthClient(ctx, c.ClientID)); code != keylens.ENOTFOUND {
			t.Errorf("second delete: %q", code)
		}
	})

	t.Run("JWTSecretKeptUntilApproval", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		// A pending request keeps it until approval, also through an
		// update that leaves it out (it is never answered, so a client
		// cannot send it back).
		r := &keylens.KeyRequest{ByUser: d.ID, ForPlan: "pol-jwt", JWTSecret: "another-hmac-secret-of-32-bytes!"}
		if err := s.CreateKeyRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateKeyRequest(ctx, r.ID, &keylens.KeyRequest{ByUser: d.ID, ForPlan: "pol-jwt", Version: "v2"}); err != nil {
			t.Fatal(err)
		}
		a2, err := s.ApproveKeyRequest(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if k2, _ := s.FindKey(ctx, keylens.HashKey(a2.RawKey)); k2 == nil || k2.JWTSecret != "another-hmac-secret-of-32-bytes!" {
			t.Errorf("the secret did not survive an update of the pending request: %+v", k2)
		}
		if got, _ := s.FindKeyRequestByID(ctx, r.ID); got == nil || got.JWTSecret != "" {
			t.Errorf("the approved request keeps the secret: %+v", got)
		}
	})

	t.Run("ApproveJWT", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-jwt"}, JWTSecret: "an-hmac-secret-of-32-characters!"})
		if err != nil {
			t.Fatal(err)
		}
		k, err := s.FindKey(ctx, keylens.HashKey(a.RawKey))
		if err != nil || k.JWTSecret != "an-hmac-secret-of-32-characters!" || k.JWTPublicKey != "" || k.AuthType != keylens.AuthJWT {
			t.Errorf("hmac jwt key %+v, %v", k, err)
		}
		// The secret lives with the key only, not on the approved request.
		if reqs, _, _ := s.FindKeyRequests(ctx, keylens.KeyRequestFilter{}); len(reqs) != 1 || reqs[0].JWTSecret != "" {
			t.Errorf("the approved request keeps the secret: %+v", reqs)
		}

		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		a, err = s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"pol-jwt"}, JWTSecret: pemKey})
		if err != nil {
			t.Fatal(err)
		}
		if k, _ := s.FindKey(ctx, keylens.HashKey(a.RawKey)); k == nil || k.JWTSecret != "" || !strings.Contains(k.JWTPublicKey, "PUBLIC KEY") {
			t.Errorf("pem jwt key %+v", k)
		}
		// Missing or broken material: refused, and nothing is half-written.
		before, _ := s.FindDeveloperByID(ctx, d.ID)
		for name, r := range map[string]*keylens.KeyRequest{
			"no secret":   {ApplyPolicies: []string{"pol-jwt"}},
			"short hmac":  {ApplyPolicies: []string{"pol-jwt"}, JWTSecret: "short"},
			"broken pem":  {ApplyPolicies: []string{"pol-jwt"}, JWTSecret: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"},
			"unknown dev": {ApplyPolicies: []string{"pol-jwt"}, JWTSecret: "an-hmac-secret-of-32-characters!", ByUser: "x"},
		} {
			devID := d.ID
			if name == "unknown dev" {
				devID = "000000000000000000000000"
			}
			if _, err := s.IssueKey(ctx, devID, r); err == nil || keylens.ErrorCode(err) == keylens.EINTERNAL {
				t.Errorf("%s: %v", name, err)
			}
		}
		after, _ := s.FindDeveloperByID(ctx, d.ID)
		if len(after.Keys) != len(before.Keys) {
			t.Errorf("keys went from %d to %d through refused approvals", len(before.Keys), len(after.Keys))
		}
		if _, n, _ := s.FindKeyRequests(ctx, keylens.KeyRequestFilter{}); n != 2 {
			t.Errorf("%d key requests, want the 2 approved ones only", n)
		}
	})

	t.Run("KeyPoliciesRevokeAndQuota", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ForPlan: "pol-token"})
		if err != nil {
			t.Fatal(err)
		}
		h := a.KeyHash
		if err := s.SetKeyPolicies(ctx, d.ID, h, []string{"pol-token-2"}); err != nil {
			t.Fatal(err)
		}
		dev, _ := s.FindDeveloperByID(ctx, d.ID)
		if strings.Join(dev.Keys[h], ",") != "pol-token-2" || dev.Subscriptions["pol-token-2"] != h || dev.Subscriptions["pol-token"] != "" {
			t.Errorf("after policy change: keys %v subscriptions %v", dev.Keys, dev.Subscriptions)
		}
		for name, err := range map[string]error{
			"unknown policy": s.SetKeyPolicies(ctx, d.ID, h, []string{"pol-nope"}),
			"no policy":      s.SetKeyPolicies(ctx, d.ID, h, nil),
		} {
			if keylens.ErrorCode(err) != keylens.EINVALID {
				t.Errorf("%s: %v", name, err)
			}
		}
		for name, err := range map[string]error{
			"policies of unknown key": s.SetKeyPolicies(ctx, d.ID, "deadbeef", []string{"pol-token"}),
			"policies of another's":   s.SetKeyPolicies(ctx, "000000000000000000000000", h, []string{"pol-token"}),
			"quota of unknown key":    s.ResetKeyQuota(ctx, d.ID, "deadbeef"),
			"revoke unknown key":      s.RevokeKey(ctx, d.ID, "deadbeef"),
		} {
			if keylens.ErrorCode(err) != keylens.ENOTFOUND {
				t.Errorf("%s: %v", name, err)
			}
		}
		if err := s.ResetKeyQuota(ctx, d.ID, h); err != nil {
			t.Fatal(err)
		}
		if k, _ := s.FindKey(ctx, h); k.QuotaResetAt.IsZero() {
			t.Error("quota reset not recorded")
		}
		if err := s.RevokeKey(ctx, d.ID, h); err != nil {
			t.Fatal(err)
		}
		if _, err := s.FindKey(ctx, h); keylens.ErrorCode(err) != keylens.ENOTFOUND {
			t.Errorf("revoked key still found: %v", err)
		}
		if dev, _ := s.FindDeveloperByID(ctx, d.ID); len(dev.Keys) != 0 || len(dev.Subscriptions) != 0 {
			t.Errorf("after revoke: keys %v subscriptions %v", dev.Keys, dev.Subscriptions)
		}
	})
}

func testChanges(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("EveryResolvingChangeIsRecordedInOrder", func(t *testing.T) {
		s, d := withDeveloperAndCatalogue(t, newStore)
		start, err := s.LastChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.IssueKey(ctx, d.ID, &keylens.KeyRequest{ForPlan: "pol-token"})
		if err != nil {
			t.Fatal(err)
		}
		steps := []func() error{
			func() error { return s.SetKeyPolicies(ctx, d.ID, a.KeyHash, []string{"pol-token-2"}) },
			func() error { return s.RevokeKey(ctx, d.ID, a.KeyHash) },
			func() error {
				dev, _ := s.FindDeveloperByID(ctx, d.ID)
				dev.Inactive = true
				return s.UpdateDeveloper(ctx, d.ID, dev)
			},
			func() error { return s.DeleteDeveloper(ctx, d.ID) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		changes, gap, err := s.ChangesSince(ctx, start, 100)
		if err != nil || gap {
			t.Fatal(err, gap)
		}
		var kinds []string
		for i, c := range changes {
			if i > 0 && c.Seq <= changes[i-1].Seq {
				t.Errorf("sequence not increasing: %d after %d", c.Seq, changes[i-1].Seq)
			}
			if c.DeveloperID != d.ID || c.Time.IsZero() {
				t.Errorf("change %+v", c)
			}
			kinds = append(kinds, c.Kind)
		}
		if got := strings.Join(kinds, " "); got != "key_added key_updated key_revoked developer developer" {
			t.Errorf("kinds %q", got)
		}
		if last, _ := s.LastChange(ctx); last != changes[len(changes)-1].Seq {
			t.Errorf("LastChange %d, want %d", last, changes[len(changes)-1].Seq)
		}
		if more, _, _ := s.ChangesSince(ctx, changes[1].Seq, 2); len(more) != 2 || more[0].Seq != changes[2].Seq {
			t.Errorf("page after %d: %+v", changes[1].Seq, more)
		}
	})
	t.Run("DeletingADeveloperRevokesEachKey", func(t *testing.T) {
		s := newStore(t)
		d := &keylens.Developer{Email: "k@example.com", Keys: map[string][]string{"aaaabbbb": {}, "ccccdddd": {}},
			OAuthClients: map[string][]keylens.OAuthClient{"pol-oauth": {{ClientID: "client-1", Secret: "s"}}}}
		mustCreate(t, s, d)
		last, _ := s.LastChange(ctx)
		if err := s.DeleteDeveloper(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		changes, _, _ := s.ChangesSince(ctx, last, 100)
		revoked := map[string]bool{}
		for _, c := range changes {
			switch c.Kind {
			case keylens.ChangeKeyRevoked:
				revoked[c.KeyHash] = true
			case keylens.ChangeOAuthRemoved:
				revoked[c.ClientID] = c.DeveloperID == d.ID
			}
		}
		// Its OAuth clients go too: a gateway that holds them hears of it.
		if !revoked["aaaabbbb"] || !revoked["ccccdddd"] || !revoked["client-1"] {
			t.Errorf("changes %+v", changes)
		}
	})
	t.Run("PruningLeavesAGapForLateReaders", func(t *testing.T) {
		s := newStore(t)
		for _, e := range []string{"p1@example.com", "p2@example.com", "p3@example.com"} {
			mustCreate(t, s, &keylens.Developer{Email: e})
		}
		last, _ := s.LastChange(ctx)
		n, err := s.PruneChanges(ctx, time.Now().Add(time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("pruned %d, %v; want all but the newest (2)", n, err)
		}
		if _, gap, _ := s.ChangesSince(ctx, 0, 10); !gap {
			t.Error("a reader at 0 was not told of the gap")
		}
		if changes, gap, _ := s.ChangesSince(ctx, last-1, 10); gap || len(changes) != 1 || changes[0].Seq != last {
			t.Errorf("a reader that had seen everything pruned: %v, gap %v", changes, gap)
		}
		mustCreate(t, s, &keylens.Developer{Email: "p4@example.com"})
		if next, _ := s.LastChange(ctx); next != last+1 {
			t.Errorf("sequence after pruning: %d, want %d", next, last+1)
		}
	})
	t.Run("WaitWakesOnCommit", func(t *testing.T) {
		s := newStore(t)
		last, _ := s.LastChange(ctx)
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = s.CreateDeveloper(ctx, &keylens.Developer{Email: "w@example.com"})
		}()
		// Backends are run with their safety-net polls far apart: the
		// commit itself must end the wait.
		changes, _, err := s.WaitForChanges(ctx, last, 10, 10*time.Second)
		if err != nil || len(changes) == 0 {
			t.Fatalf("waited 10 s for a change committed after 50 ms, got %v, %v: the commit did not wake the reader", changes, err)
		}
		// Nothing new: the wait ends empty at its deadline.
		changes, _, err = s.WaitForChanges(ctx, changes[len(changes)-1].Seq, 10, 100*time.Millisecond)
		if err != nil || len(changes) != 0 {
			t.Errorf("expected an empty wait, got %v, %v", changes, err)
		}
	})
}
