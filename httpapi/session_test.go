package httpapi_test

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"tokenledger/accounts"
)

// TestPasswordChangeEndsSessions: once an account's password changes in the
// accounts file, as `tokenledger passwd` changes it, each of that account's
// panel sessions ends at its next request, which goes to the login page;
// other accounts' sessions stay. An account taken out of the file loses its
// sessions too.
func TestPasswordChangeEndsSessions(t *testing.T) {
	n := mustNode(t)
	bob, bobElsewhere, carol := newBrowser(t, n.URL, nil), newBrowser(t, n.URL, nil), newBrowser(t, n.URL, nil)
	for _, b := range []*browser{bob, bobElsewhere} {
		if p := b.login("bob", passwords["bob"]); p.status != http.StatusSeeOther {
			t.Fatalf("bob's login: %d", p.status)
		}
	}
	if p := carol.login("carol", passwords["carol"]); p.status != http.StatusSeeOther {
		t.Fatalf("carol's login: %d", p.status)
	}
	bobCSRF := bob.csrf()

	if err := accounts.SetPassword(n.Accounts, "bob", "bob-new-password"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*browser{bob, bobElsewhere} {
		if p := b.do("GET", "/create", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/" {
			t.Fatalf("bob's old session after the change: %d %v", p.status, p.header)
		}
		if p := b.do("GET", "/", nil); !strings.Contains(p.body, `id="login-password"`) {
			t.Fatalf("bob's old session does not get the login page:\n%s", p.body)
		}
	}
	if p := bob.do("POST", "/create", url.Values{"csrf": {bobCSRF}, "name": {"late"}, "expiry": {"never"}}); p.status != http.StatusSeeOther || len(n.names("bob")) != 0 {
		t.Fatalf("a change from bob's old session: %d, tokens %v", p.status, n.names("bob"))
	}
	if p := carol.do("GET", "/create", nil); p.status != http.StatusOK {
		t.Fatalf("carol's session after bob's change: %d", p.status)
	}

	// The new password logs in, and its session lasts; the old one does not.
	if p := bob.login("bob", passwords["bob"]); p.status != http.StatusUnauthorized {
		t.Fatalf("the old password: %d", p.status)
	}
	if p := bob.login("bob", "bob-new-password"); p.status != http.StatusSeeOther {
		t.Fatalf("the new password: %d", p.status)
	}
	if p := bob.do("GET", "/create", nil); p.status != http.StatusOK {
		t.Fatalf("the new session: %d", p.status)
	}

	// carol leaves the file.
	b, err := os.ReadFile(n.Accounts)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasPrefix(line, "carol:") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(n.Accounts+".new", []byte(strings.Join(kept, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(n.Accounts+".new", n.Accounts); err != nil {
		t.Fatal(err)
	}
	if p := carol.do("GET", "/create", nil); p.status != http.StatusSeeOther {
		t.Fatalf("carol's session after she left the file: %d", p.status)
	}
	if p := bob.do("GET", "/create", nil); p.status != http.StatusOK {
		t.Fatalf("bob's session after carol left the file: %d", p.status)
	}
}
