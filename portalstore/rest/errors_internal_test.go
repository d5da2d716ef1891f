package rest

import (
	"net/http"
	"testing"

	"github.com/keylens/keylens/portalstore"
)

// TestErrorTableBothWays: every domain error code has its own status, and
// the client reads each status back as the code it came from.
func TestErrorTableBothWays(t *testing.T) {
	for _, code := range []string{portalstore.ECONFLICT, portalstore.EINTERNAL, portalstore.EINVALID, portalstore.ENOTFOUND,
		portalstore.EUNAUTHORIZED, portalstore.EUNAVAILABLE, portalstore.EFULL, portalstore.ELIMITED} {
		status, ok := errorStatus[code]
		if !ok {
			t.Errorf("%s has no status", code)
			continue
		}
		if back := errorCode[status]; back != code {
			t.Errorf("%s → %d → %s", code, status, back)
		}
	}
	if errorStatus[portalstore.EFULL] != http.StatusInsufficientStorage || errorStatus[portalstore.EUNAVAILABLE] != http.StatusServiceUnavailable {
		t.Error("EFULL must be 507 and EUNAVAILABLE 503")
	}
}
