package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tokenledger/httpapi"
)

// TestNothingIsAnsweredWhileCatchingUp: until the table has caught up it may
// lack a revoke, so neither the UAPI nor the panel's pages answer from it.
func TestNothingIsAnsweredWhileCatchingUp(t *testing.T) {
	h := httpapi.New(httpapi.Config{Ready: func() bool { return false }})
	for _, path := range []string{"/execute/Tokens/list", "/manage?name=x", "/readyz"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "cpanel bob:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s while catching up: %d %s, want 503", path, rec.Code, rec.Body)
		}
		if path == "/execute/Tokens/list" && !strings.Contains(rec.Body.String(), `"status":0`) {
			t.Errorf("UAPI refusal is not a UAPI envelope: %s", rec.Body)
		}
	}
}
