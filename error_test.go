package keylens

import (
	"net/http"
	"testing"
)

// TestErrorTableBothWays: every domain error code has its own status, and
// each status reads back as the code it came from.
func TestErrorTableBothWays(t *testing.T) {
	for _, code := range []string{ECONFLICT, EINTERNAL, EINVALID, ENOTFOUND, EUNAUTHORIZED, EUNAVAILABLE, EFULL, ELIMITED, EBADGATEWAY} {
		status, ok := errorStatus[code]
		if !ok {
			t.Errorf("%s has no status", code)
			continue
		}
		if HTTPStatus(code) != status || CodeOfStatus(status) != code {
			t.Errorf("%s → %d → %s", code, status, CodeOfStatus(status))
		}
	}
	if HTTPStatus(EFULL) != http.StatusInsufficientStorage || HTTPStatus(EUNAVAILABLE) != http.StatusServiceUnavailable {
		t.Error("EFULL must be 507 and EUNAVAILABLE 503")
	}
	if HTTPStatus("no such code") != http.StatusInternalServerError || CodeOfStatus(http.StatusTeapot) != "" {
		t.Error("unknown codes and statuses")
	}
}
