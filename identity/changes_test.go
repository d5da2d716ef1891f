package identity_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keylens/keylens/identity"
)

// The one rule of what a change makes stale.
func TestChangeStale(t *testing.T) {
	for _, tt := range []struct {
		c             identity.Change
		hash, dev     string
		forgetUnknown bool
	}{
		{identity.Change{Kind: identity.ChangeKeyRevoked, DeveloperID: "d", KeyHash: "h"}, "h", "", false},
		{identity.Change{Kind: identity.ChangeKeyUpdated, DeveloperID: "d", KeyHash: "h"}, "h", "", false},
		{identity.Change{Kind: identity.ChangeKeyAdded, DeveloperID: "d", KeyHash: "h"}, "h", "", true},
		{identity.Change{Kind: identity.ChangeDeveloper, DeveloperID: "d"}, "", "d", false},
		{identity.Change{Kind: identity.ChangeOAuthRemoved, DeveloperID: "d", ClientID: "c"}, "", "d", false},
		{identity.Change{Kind: identity.ChangeTokenRevoked, DeveloperID: "d", KeyHash: "t", ClientID: "c"}, "t", "", false},
		{identity.Change{Kind: identity.ChangeTokensRevoked, DeveloperID: "d", ClientID: "c"}, "", "d", false},
	} {
		hash, dev, newKey := tt.c.Stale()
		if hash != tt.hash || dev != tt.dev || newKey != tt.forgetUnknown {
			t.Errorf("%s: Stale() = %q, %q, %v; want %q, %q, %v", tt.c.Kind, hash, dev, newKey, tt.hash, tt.dev, tt.forgetUnknown)
		}
	}
}

func TestChangesRefusesWhatIsNotAFeed(t *testing.T) {
	for name, tt := range map[string]struct {
		h    http.HandlerFunc
		want string
	}{
		"secret":   {answer(401, "application/json", "", `{"error":"x"}`), "the secret is missing or wrong"},
		"old":      {answer(404, "application/json", "", `{"error":"not found"}`), "answered 404"},
		"html":     {answer(200, "text/html", "", `<p>`), "Content-Type"},
		"backward": {answer(200, "application/json", "", `{"changes":[],"last":3}`), "position 3 after 10"},
		"not JSON": {answer(200, "application/json", "", `[`), "no change list"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := testServer(tt.h)
			defer srv.Close()
			_, err := identity.NewClient(srv.URL, identity.ClientOptions{}).Changes(context.Background(), 10, 0, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
