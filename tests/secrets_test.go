package tests

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestSecretsSealedAtRestEndToEnd: with a secrets key, the JWT HMAC secret
// and the OAuth client secret are nowhere in the database file, yet a JWT
// signed with the secret resolves and the developer still reads the
// client's secret; keylens rotate-secrets-key moves them to a new key, after
// which the old key refuses to start and the new one serves.
func TestSecretsSealedAtRestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "keylens.db")
	store := "sqlite:" + dbPath
	key1, key2 := strings.Repeat("1f", 32), strings.Repeat("2e", 32)
	newKeyFile := filepath.Join(dir, "new.key")
	if err := os.WriteFile(newKeyFile, []byte(key2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(key string) []string {
		return []string{"KEYLENS_ADMIN_KEY=" + testAdminKey, "KEYLENS_SECRETS_KEY=" + key}
	}
	in := startKeylens(t, store, env(key1))
	wantEnvelope(t, in.do("POST", "/api/portal/catalogue", `{"apis":[{"policy_id":"pol-jwt","auth_type":"jwt"},{"policy_id":"pol-oauth","auth_type":"oauth"}]}`), 200, "OK", "")
	dev := createDeveloper(t, in, `{"email":"sealed@example.com"}`)
	const hmacSecret = "an-hmac-secret-sealed-at-rest-0123456789"
	a := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-jwt"],"jwt_secret":"`+hmacSecret+`"}`))
	o := decodeApproval(t, in.do("POST", "/api/portal/developers/"+dev+"/keys", `{"apply_policies":["pol-oauth"],"oauth_info":{"redirect_uri":"https://app.example.com/cb"}}`))
	// The kid names the key.
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = a.RawKey
	token, err := tok.SignedString([]byte(hmacSecret))
	if err != nil {
		t.Fatal(err)
	}
	resolves := func(in *instance) int {
		req, _ := http.NewRequest("GET", in.SidecarURL+"/developer", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return send(t, req).Status
	}
	if s := resolves(in); s != 200 {
		t.Fatalf("a JWT signed with the sealed secret: %d", s)
	}
	if got := clientSecret(t, in, dev); got != o.Secret {
		t.Errorf("the developer reads the client secret %q, want %q", got, o.Secret)
	}
	in.stop()
	for _, secret := range []string{hmacSecret, o.Secret} {
		for _, p := range []string{dbPath, dbPath + "-wal"} {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %q in the clear", filepath.Base(p), secret)
			}
		}
	}

	rotate := exec.Command(keylensBin, "rotate-secrets-key", "--store", store, "--new-secrets-key-file", newKeyFile)
	rotate.Env = append(cleanEnv(), "KEYLENS_SECRETS_KEY="+key1)
	if out, err := rotate.CombinedOutput(); err != nil || !strings.Contains(string(out), "2 secrets re-sealed") {
		t.Fatalf("rotate-secrets-key: %v\n%s", err, out)
	}
	old := exec.Command(keylensBin, "serve", "--store", store, "--admin-addr", "127.0.0.1:0", "--sidecar-addr", "127.0.0.1:0", "--portal-addr", "127.0.0.1:0")
	old.Env = append(cleanEnv(), env(key1)...)
	if out, err := old.CombinedOutput(); err == nil || !strings.Contains(string(out), "not with this secrets key") {
		t.Errorf("the old key after rotation: %v\n%s", err, out)
	}
	in = startKeylens(t, store, env(key2))
	if s := resolves(in); s != 200 {
		t.Errorf("after rotation, a JWT signed with the secret: %d", s)
	}
	if got := clientSecret(t, in, dev); got != o.Secret {
		t.Errorf("after rotation, the client secret reads %q", got)
	}
}

// clientSecret is the secret of the developer's one OAuth client, as GET
// developer answers it.
func clientSecret(t *testing.T, in *instance, dev string) string {
	t.Helper()
	d := decodeAs[struct {
		OAuthClients map[string][]struct{ Secret string } `json:"oauth_clients"`
	}](t, in.do("GET", "/api/portal/developers/"+dev, ""))
	if cs := d.OAuthClients["pol-oauth"]; len(cs) == 1 {
		return cs[0].Secret
	}
	return ""
}
