package rest

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestFullStoreIsNotLoggedPerRequest: 507s are not logged one by one (the
// store logs when it runs out of space and when it has space again);
// internal errors are.
func TestFullStoreIsNotLoggedPerRequest(t *testing.T) {
	var log bytes.Buffer
	s := &Server{Config: Config{Logger: slog.New(slog.NewTextHandler(&log, nil))}}
	for range 100 {
		rec := httptest.NewRecorder()
		s.writeError(rec, httptest.NewRequest("POST", "/api/portal/developers", nil), keylens.Errorf(keylens.EFULL, "full"))
		if rec.Code != http.StatusInsufficientStorage {
			t.Fatalf("EFULL answered %d", rec.Code)
		}
	}
	if log.Len() != 0 {
		t.Errorf("100 refusals of a full store logged:\n%s", log.String())
	}
	s.writeError(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), keylens.Errorf(keylens.EINTERNAL, "boom"))
	if !strings.Contains(log.String(), "level=ERROR") {
		t.Error("an internal error was not logged")
	}
}
