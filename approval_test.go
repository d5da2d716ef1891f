package keylens_test

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

const testOrg = "5e9d9544a1dcd60001d0ed20"

func testIssuer() keylens.Issuer {
	return keylens.Issuer{OrgID: testOrg, HashAlgorithm: keylens.HashMurmur64,
		Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func requestFor(policy string) *keylens.KeyRequest {
	return &keylens.KeyRequest{ID: "req1", ByUser: "dev1", ApplyPolicies: []string{policy, "extra"},
		Fields: map[string]any{"oauth_app_description": "my app", "oauth_use_case": "testing"}}
}

func entry(policy, authType string) *keylens.CatalogueEntry {
	return &keylens.CatalogueEntry{PolicyID: policy, AuthType: authType}
}

func TestIssue_AuthToken(t *testing.T) {
	r := requestFor("pol")
	before := *r
	got, err := testIssuer().Issue(r, entry("pol", keylens.AuthToken), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, k := got.Approval, got.Key
	if keylens.KeyOrg(a.RawKey) != testOrg || keylens.KeyHashAlgorithm(a.RawKey) != keylens.HashMurmur64 {
		t.Errorf("raw key %q: want a murmur64 key of org %s", a.RawKey, testOrg)
	}
	if k.Hash != keylens.HashKey(a.RawKey) || a.KeyHash != k.Hash {
		t.Errorf("key hash %s / approval hash %s, want the hash of the raw key %s", k.Hash, a.KeyHash, keylens.HashKey(a.RawKey))
	}
	if a.Password != "" || a.OAuthClient != nil || a.PolicyID != "pol" {
		t.Errorf("approval %+v: want a plain key for pol", a)
	}
	want := keylens.Key{Hash: k.Hash, DeveloperID: "dev1", Policies: []string{"pol", "extra"},
		AuthType: keylens.AuthToken, RequestID: "req1", Fields: r.Fields, DateCreated: testIssuer().Now}
	if !reflect.DeepEqual(*k, want) {
		t.Errorf("key = %+v\nwant %+v", *k, want)
	}
	if !reflect.DeepEqual(*r, before) {
		t.Errorf("Issue changed the request: %+v", *r)
	}
	again, _ := testIssuer().Issue(r, entry("pol", keylens.AuthToken), nil)
	if again.Approval.RawKey == a.RawKey {
		t.Error("two approvals minted the same key")
	}
}

func TestIssue_Basic(t *testing.T) {
	secret := &keylens.BasicSecret{Password: "pw-made-before", Hash: "$2a$04$hash"}
	got, err := testIssuer().Issue(requestFor("pol"), entry("pol", keylens.AuthBasic), secret)
	if err != nil {
		t.Fatal(err)
	}
	a, k := got.Approval, got.Key
	if len(a.RawKey) != 10 || a.Password != "pw-made-before" {
		t.Errorf("approval %+v: want a 10-character username and the prepared password", a)
	}
	// The gateway's key of a basic user is the key of (org, username): the
	// hash must be that one, or Tyk and keylens would disagree.
	if want := keylens.HashKey(keylens.KeyFor(testOrg, a.RawKey, keylens.HashMurmur64)); k.Hash != want {
		t.Errorf("hash %s, want %s", k.Hash, want)
	}
	if k.BasicUsername != a.RawKey || k.BasicPasswordHash != secret.Hash {
		t.Errorf("key stores %q/%q", k.BasicUsername, k.BasicPasswordHash)
	}

	// Without a prepared secret, Issue makes one that checks.
	got, err = testIssuer().Issue(requestFor("pol"), entry("pol", keylens.AuthBasic), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !keylens.CheckPassword(got.Key.BasicPasswordHash, got.Approval.Password) || len(got.Approval.Password) != 16 {
		t.Errorf("made password %q does not check against its hash", got.Approval.Password)
	}
}

func TestIssue_JWT(t *testing.T) {
	r := requestFor("pol")
	r.JWTSecret = strings.Repeat("ab", 20)
	got, err := testIssuer().Issue(r, entry("pol", keylens.AuthJWT), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key.JWTSecret != r.JWTSecret || got.Key.JWTPublicKey != "" {
		t.Errorf("key material %q/%q", got.Key.JWTSecret, got.Key.JWTPublicKey)
	}
	if got.Key.Hash != keylens.HashKey(got.Approval.RawKey) || keylens.KeyOrg(got.Approval.RawKey) != testOrg {
		t.Errorf("jwt key id %q does not hash to %s", got.Approval.RawKey, got.Key.Hash)
	}

	r.JWTSecret = ""
	_, err = testIssuer().Issue(r, entry("pol", keylens.AuthJWT), nil)
	if keylens.ErrorCode(err) != keylens.EINVALID || !strings.Contains(keylens.ErrorMessage(err), "--jwt-jwks-url") {
		t.Errorf("jwt without material: %v, want EINVALID naming the flag that enables it", err)
	}
}

// With central JWT on, a jwt request without material is approved: its
// key has none, and its id is what the identity provider names.
func TestIssue_JWTCentral(t *testing.T) {
	is := testIssuer()
	is.CentralJWT = true
	r := requestFor("pol")
	got, err := is.Issue(r, entry("pol", keylens.AuthJWT), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := got.Key
	if k.JWTSecret != "" || k.JWTPublicKey != "" || k.AuthType != keylens.AuthJWT || got.Approval.Password != "" {
		t.Errorf("key %+v", k)
	}
	if k.Hash != keylens.HashKey(got.Approval.RawKey) || got.Approval.KeyHash != k.Hash || keylens.KeyOrg(got.Approval.RawKey) != testOrg {
		t.Errorf("key id %q does not hash to %s", got.Approval.RawKey, k.Hash)
	}
	// Material, when given, is still checked and kept.
	r.JWTSecret = "short"
	if _, err := is.Issue(r, entry("pol", keylens.AuthJWT), nil); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("a short secret with central JWT: %v", err)
	}
	r.JWTSecret = strings.Repeat("cd", 20)
	if got, err := is.Issue(r, entry("pol", keylens.AuthJWT), nil); err != nil || got.Key.JWTSecret != r.JWTSecret {
		t.Errorf("a secret with central JWT: %+v, %v", got, err)
	}
}

func TestIssue_OAuth(t *testing.T) {
	r := requestFor("pol")
	r.OAuthInfo.RedirectURI = "https://app.example/callback"
	got, err := testIssuer().Issue(r, entry("pol", keylens.AuthOAuth), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Approval.OAuthClient
	if got.Key != nil || got.Approval.RawKey != "" || c == nil {
		t.Fatalf("oauth issued %+v / %+v: want only a client", got.Key, got.Approval)
	}
	if len(c.ClientID) != 32 || c.RedirectURI != r.OAuthInfo.RedirectURI || c.AppDescription != "my app" || c.UseCase != "testing" {
		t.Errorf("client %+v", c)
	}
	if raw, err := base64.StdEncoding.DecodeString(c.Secret); err != nil || len(raw) != 36 || raw[14] != '4' {
		t.Errorf("secret %q: want the base64 of a v4 UUID", c.Secret)
	}

	r.OAuthInfo.RedirectURI = "javascript:alert(1)"
	if _, err := testIssuer().Issue(r, entry("pol", keylens.AuthOAuth), nil); keylens.ErrorCode(err) != keylens.EINVALID {
		t.Errorf("bad redirect URI: %v, want EINVALID", err)
	}
	// Other entries ignore a redirect URI (Tyk's own sample files one).
	if _, err := testIssuer().Issue(r, entry("pol", keylens.AuthToken), nil); err != nil {
		t.Errorf("token entry with a redirect URI: %v", err)
	}
}

func TestIssue_Refusals(t *testing.T) {
	r := requestFor("pol")
	r.Approved = true
	if _, err := testIssuer().Issue(r, entry("pol", keylens.AuthToken), nil); keylens.ErrorCode(err) != keylens.ECONFLICT {
		t.Errorf("approved twice: %v, want ECONFLICT", err)
	}
	for name, e := range map[string]*keylens.CatalogueEntry{
		"no entry":     nil,
		"other policy": entry("other", keylens.AuthToken),
	} {
		if _, err := testIssuer().Issue(requestFor("pol"), e, nil); keylens.ErrorCode(err) != keylens.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}

func TestRandomAlnum(t *testing.T) {
	seen := map[rune]bool{}
	for range 200 {
		s := keylens.RandomAlnum(20)
		if len(s) != 20 {
			t.Fatalf("len %d", len(s))
		}
		for _, c := range s {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", c) {
				t.Fatalf("%q outside [A-Za-z0-9]", c)
			}
			seen[c] = true
		}
	}
	if len(seen) != 62 {
		t.Errorf("4,000 characters used only %d of 62", len(seen))
	}
}
