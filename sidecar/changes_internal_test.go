package sidecar

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keylens/keylens/identity"
	"github.com/keylens/keylens/portalstore"
)

// The sidecar's GET /changes speaks identity's wire types; they must say
// what the domain's change feed says (the admin API serves that one), kind
// names included.
func TestWireChangeIsTheDomainChange(t *testing.T) {
	c := portalstore.Change{Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Kind: portalstore.ChangeKeyRevoked,
		DeveloperID: "d", KeyHash: "h", ClientID: "c"}
	domain, _ := json.Marshal(c)
	wire, _ := json.Marshal(wireChange(c))
	if string(domain) != string(wire) {
		t.Errorf("wire %s, domain %s", wire, domain)
	}
	for domain, wire := range map[string]string{
		portalstore.ChangeDeveloper: identity.ChangeDeveloper, portalstore.ChangeKeyAdded: identity.ChangeKeyAdded,
		portalstore.ChangeKeyUpdated: identity.ChangeKeyUpdated, portalstore.ChangeKeyRevoked: identity.ChangeKeyRevoked,
		portalstore.ChangeOAuthRemoved: identity.ChangeOAuthRemoved,
	} {
		if domain != wire {
			t.Errorf("kind %q is %q on the wire", domain, wire)
		}
	}
}
