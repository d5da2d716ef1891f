package rest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens"
)

// The Tyk Classic Portal API's two revocations, verbatim, at the Tyk Classic Portal API's path and beside the
// other portal routes; their refusals in the envelope.
func TestSeedTokenRevocations(t *testing.T) {
	ctx := context.Background()
	db, _, srv := newPortal(t)
	if err := db.PutCatalogue(ctx, &keylens.Catalogue{APIs: []keylens.CatalogueEntry{{PolicyID: "p", AuthType: keylens.AuthOAuth}}}); err != nil {
		t.Fatal(err)
	}
	d := &keylens.Developer{Email: "ada@example.com"}
	if err := db.CreateDeveloper(ctx, d); err != nil {
		t.Fatal(err)
	}
	a, err := db.IssueKey(ctx, d.ID, &keylens.KeyRequest{ApplyPolicies: []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	client := keylens.ClientCredentials{ID: a.OAuthClient.ClientID, Secret: a.OAuthClient.Secret}
	issue := func() (string, string) {
		token, hash := keylens.NewAccessToken()
		if _, err := db.IssueToken(ctx, client, hash, time.Hour); err != nil {
			t.Fatal(err)
		}
		return token, hash
	}
	live := func(hash string) bool { _, err := db.ResolveToken(ctx, hash); return err == nil }
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "admin")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var env struct{ Status, Message string }
		if json.Unmarshal(b, &env) != nil || env.Status == "" {
			t.Fatalf("POST %s: not an envelope: %s", path, b)
		}
		return resp.StatusCode, env.Message
	}

	for _, prefix := range []string{"", "/api/portal"} {
		base := prefix + "/oauth-clients/" + client.ID
		t1, h1 := issue()
		_, h2 := issue()
		for _, tt := range []struct {
			path, body string
			status     int
			msg        string
		}{
			{"/oauth-clients/nope/revoke", `{"token":"` + t1 + `","token_type_hint":"access_token"}`, 404, "OAuth client not found"},
			{base + "/revoke", `{"token_type_hint":"access_token"}`, 400, "Request body malformed: token is required"},
			{base + "/revoke", `{"token":""}`, 400, "token is required (at most 1024 characters)"},
			{base + "/revoke", `{"token":"x","tokn":"y"}`, 400, "Request body malformed: unknown member tokn"},
			{base + "/revoke_all", `{}`, 400, "Request body malformed: client_secret is required"},
			{base + "/revoke_all", `{"client_secret":"wrong"}`, 401, "Wrong client secret"},
			{"/oauth-clients/nope/revoke_all", `{"client_secret":"` + client.Secret + `"}`, 404, "OAuth client not found"},
		} {
			if status, msg := post(prefix+strings.TrimPrefix(tt.path, prefix), tt.body); status != tt.status || msg != tt.msg {
				t.Errorf("POST %s %s: %d %q, want %d %q", tt.path, tt.body, status, msg, tt.status, tt.msg)
			}
		}
		if !live(h1) || !live(h2) {
			t.Fatal("a refused revocation revoked")
		}
		// The Tyk Classic Portal API's sample request, with one of our tokens.
		if status, msg := post(base+"/revoke", `{"token":"`+t1+`","token_type_hint":"access_token"}`); status != 200 || msg != "token revoked successfully" {
			t.Errorf("revoke: %d %q", status, msg)
		}
		if live(h1) || !live(h2) {
			t.Error("revoke revoked the wrong token")
		}
		// A token already revoked, or given by its hash: still OK.
		if status, _ := post(base+"/revoke", `{"token":"`+h1+`"}`); status != 200 {
			t.Errorf("revoking by hash: %d", status)
		}
		if status, msg := post(base+"/revoke_all", `{"client_secret":"`+client.Secret+`"}`); status != 200 || msg != "tokens revoked successfully" {
			t.Errorf("revoke_all: %d %q", status, msg)
		}
		if live(h2) {
			t.Error("revoke_all left a token")
		}
	}
	// Without the admin key: 401, nothing revoked.
	_, h := issue()
	req, _ := http.NewRequest("POST", srv.URL+"/oauth-clients/"+client.ID+"/revoke_all", strings.NewReader(`{"client_secret":"`+client.Secret+`"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !live(h) {
		t.Errorf("without the admin key: %d", resp.StatusCode)
	}
}
