package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// TestReadyzSaysWhyTheNodeIsHalted: an operator reading /readyz learns what
// keeps the node from answering, not only that it does not.
func TestReadyzSaysWhyTheNodeIsHalted(t *testing.T) {
	for _, tt := range []struct {
		name, halted, want string
	}{
		{"catching up", "", "catching up with the stream\n"},
		{"halted", "the NATS server has no space left for JetStream (x)", "the NATS server has no space left for JetStream (x)\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := httpapi.New(httpapi.Config{Ready: func() bool { return false }, Halted: func() string { return tt.halted }})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != tt.want {
				t.Errorf("/readyz: %d %q, want 503 %q", rec.Code, rec.Body, tt.want)
			}
		})
	}
}

// TestStalenessIsShown: a node that cannot prove its table current says so,
// with the age of its newest proof, in /readyz and /metrics.
func TestStalenessIsShown(t *testing.T) {
	h := httpapi.New(httpapi.Config{Ready: func() bool { return false },
		Staleness: func() time.Duration { return 7 * time.Second }, MaxStaleness: 5 * time.Second})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if want := "cannot vouch that the table is current: the newest proof is 7s old (--max-staleness 5s)\n"; rec.Code != http.StatusServiceUnavailable || rec.Body.String() != want {
		t.Errorf("/readyz: %d %q, want 503 %q", rec.Code, rec.Body, want)
	}
}
