package httpapi_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"tokenledger/events"
	"tokenledger/httpapi"
)

// TestShortPasswords: a new password needs 12 characters, but one set
// before that rule still logs in, so nobody is locked out; SetPassword
// refuses before it writes anything.
func TestShortPasswords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts")
	hash, _ := bcrypt.GenerateFromPassword([]byte("short"), bcrypt.MinCost)
	if err := os.WriteFile(path, []byte("bob:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	accounts, err := httpapi.OpenAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	if !accounts.Check("bob", "short") {
		t.Fatal("an old short password no longer logs in")
	}
	before, _ := os.ReadFile(path)
	for _, tc := range []struct{ name, account, password string }{
		{"change to a short one", "bob", "eleven-char"},
		{"the same short one again", "bob", "short"},
		{"a new account", "carol", "x"},
	} {
		err := httpapi.SetPassword(path, tc.account, tc.password)
		if events.ErrorCode(err) != events.Invalid || events.ErrorMessage(err) != "the password is shorter than 12 characters: choose a longer one" {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("a refused password changed the file:\n%s", after)
	}
	if err := httpapi.SetPassword(path, "bob", "twelve-chars"); err != nil {
		t.Fatalf("12 characters: %v", err)
	}
	if !accounts.Check("bob", "twelve-chars") {
		t.Fatal("the new password does not log in")
	}
}
