package rest

import (
	"net/http"
	"testing"

	"github.com/keylens/keylens"
)

// TestErrorTableBothWays: every domain error code has its own status, and
// each status reads back as the code it came from.
func TestErrorTableBothWays(t *testing.T) {
	for _, code := range []string{keylens.ECONFLICT, keylens.EINTERNAL, keylens.EINVALID, keylens.ENOTFOUND, keylens.EUNAUTHORIZED, keylens.EUNAVAILABLE, keylens.EFULL, keylens.ELIMITED, keylens.EBADGATEWAY} {
		status, ok := errorStatus[code]
		if !ok {
			t.Errorf("%s has no status", code)
			continue
		}
		if HTTPStatus(code) != status || CodeOfStatus(status) != code {
			t.Errorf("%s → %d → %s", code, status, CodeOfStatus(status))
		}
	}
	if HTTPStatus(keylens.EFULL) != http.StatusInsufficientStorage || HTTPStatus(keylens.EUNAVAILABLE) != http.StatusServiceUnavailable {
		t.Error("EFULL must be 507 and EUNAVAILABLE 503")
	}
	if HTTPStatus(keylens.EBADGATEWAY) != http.StatusBadGateway {
		t.Error("EBADGATEWAY must be 502")
	}
	if HTTPStatus("no such code") != http.StatusInternalServerError || CodeOfStatus(http.StatusTeapot) != "" {
		t.Error("unknown codes and statuses")
	}
}
