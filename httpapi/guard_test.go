package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// metricsText is /metrics as a scraper reads it.
func (n *node) metricsText(tb testing.TB) string {
	tb.Helper()
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func hasLines(tb testing.TB, text string, lines ...string) {
	tb.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l+"\n") {
			tb.Errorf("no line %q in:\n%s", l, text)
		}
	}
}

// TestLoginLockout: after five failed logins an account waits, told how
// long, and a longer time after each further failure; the right password
// works once the wait is over. The wait is on the test's clock.
func TestLoginLockout(t *testing.T) {
	n := mustNode(t)
	b := newBrowser(t, n.URL, nil)
	for i := range 5 {
		if p := b.login("bob", "guess"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "The login is invalid.") {
			t.Fatalf("failure %d: %d", i+1, p.status)
		}
	}
	// Locked: even the right password is refused, at once and unchecked.
	p := b.login("bob", passwords["bob"])
	if p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "try again in 5 seconds") ||
		p.header.Get("Retry-After") != "5" || sessionCookie(p) != nil {
		t.Fatalf("locked login: %d %v\n%s", p.status, p.header, p.body)
	}
	// HTTP Basic is the same password: it is locked too, still a 401.
	n.uapi(t, "GET", "list", basic("bob", passwords["bob"]), nil).refused(t, http.StatusUnauthorized, "try again in 5 seconds")
	// Other accounts, and tokens of this one, are not locked.
	if p := b.login("carol", passwords["carol"]); p.status != http.StatusSeeOther {
		t.Fatalf("carol: %d", p.status)
	}
	n.uapi(t, "GET", "list", cpanel("bob", n.mustToken(t, "bob", "script", nil)), nil).ok(t)

	// A failure after the wait locks for twice as long.
	n.Clock.Advance(5 * time.Second)
	b = newBrowser(t, n.URL, nil)
	if p := b.login("bob", "guess-again"); p.status != http.StatusUnauthorized {
		t.Fatalf("failure after the lock: %d", p.status)
	}
	if p := b.login("bob", passwords["bob"]); p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "try again in 10 seconds") {
		t.Fatalf("second lock: %d\n%s", p.status, p.body)
	}
	n.Clock.Advance(9 * time.Second)
	if p := b.login("bob", passwords["bob"]); p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "try again in 1 second.") {
		t.Fatalf("near the end of the lock: %d\n%s", p.status, p.body)
	}

	// After the wait the right password works, and the failures are forgotten.
	n.Clock.Advance(time.Second)
	if p := b.login("bob", passwords["bob"]); p.status != http.StatusSeeOther || sessionCookie(p) == nil {
		t.Fatalf("right password after the lock: %d\n%s", p.status, p.body)
	}
	for range 4 {
		n.uapi(t, "GET", "list", basic("bob", "guess"), nil).refused(t, http.StatusUnauthorized, "Access denied: send")
	}
	n.uapi(t, "GET", "list", basic("bob", passwords["bob"]), nil).ok(t)

	// An account that does not exist locks just the same, so a lock tells
	// nothing about which accounts exist.
	b = newBrowser(t, n.URL, nil)
	for range 5 {
		b.login("dave", "x")
	}
	if p := b.login("dave", "x"); p.status != http.StatusTooManyRequests {
		t.Fatalf("unknown account: %d", p.status)
	}

	// Failures spread out with pauses of more than 15 minutes never lock.
	for range 8 {
		n.uapi(t, "GET", "list", basic("carol", "guess"), nil).refused(t, http.StatusUnauthorized, "Access denied: send")
		n.Clock.Advance(16 * time.Minute)
	}
	hasLines(t, n.metricsText(t), "tokenledger_login_refusals_total 5")
}

// TestFailuresBySource: every failed credential counts, by kind and by the
// address it came from.
func TestFailuresBySource(t *testing.T) {
	n := mustNode(t)
	good := n.mustToken(t, "bob", "good", nil)
	n.uapi(t, "GET", "list", cpanel("bob", good), nil).ok(t)
	n.uapi(t, "GET", "list", "", nil).refused(t, http.StatusUnauthorized, "Access denied") // no credential: no failure
	n.uapi(t, "GET", "list", cpanel("bob", strings.Repeat("A", 32)), nil).refused(t, http.StatusUnauthorized, "Access denied")
	n.uapi(t, "GET", "list", cpanel("Bob", good), nil).refused(t, http.StatusUnauthorized, "Access denied")
	n.uapi(t, "GET", "list", basic("bob", "guess"), nil).refused(t, http.StatusUnauthorized, "Access denied")
	b := newBrowser(t, n.URL, nil)
	b.login("carol", "guess")
	b.login("carol", passwords["carol"])
	hasLines(t, n.metricsText(t),
		`tokenledger_auth_failures_total{kind="password"} 2`,
		`tokenledger_auth_failures_total{kind="token"} 2`,
		`tokenledger_auth_failures_by_source_total{source="127.0.0.1"} 4`,
		`tokenledger_panel_logins_total{result="failed"} 1`,
		`tokenledger_panel_logins_total{result="ok"} 1`,
	)
}

// TestInputLimits: URLs, headers and bodies each have a bound, and a request
// beyond one is refused before anything reads it.
func TestInputLimits(t *testing.T) {
	n := mustNode(t)
	auth := cpanel("bob", n.mustToken(t, "bob", "admin", nil))
	long := strings.Repeat("x", 9<<10)

	req, _ := http.NewRequest("GET", n.URL+"/execute/Tokens/list?pad="+long, nil)
	req.Header.Set("Authorization", auth)
	do(t, req).refused(t, http.StatusRequestURITooLong, "URL is longer than 8 KiB")

	req, _ = http.NewRequest("GET", n.URL+"/execute/Tokens/list", nil)
	req.Header.Set("Authorization", auth)
	for i := range 3 {
		req.Header.Set("X-Pad-"+string(rune('A'+i)), long[:6<<10])
	}
	do(t, req).refused(t, http.StatusRequestHeaderFieldsTooLarge, "headers are larger than 16 KiB")

	resp, err := http.Get(n.URL + "/manage?name=" + url.QueryEscape(long))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("panel with a long URL: %d", resp.StatusCode)
	}

	// Within the bounds, all is well.
	req, _ = http.NewRequest("GET", n.URL+"/execute/Tokens/list?pad="+long[:4<<10], nil)
	req.Header.Set("Authorization", auth)
	req.Header.Set("X-Pad", long[:8<<10])
	do(t, req).ok(t)
}
