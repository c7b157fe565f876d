package accounts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"tokenledger/events"
	"tokenledger/internal/atomicfile"
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
	passwords, err := OpenPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := passwords.Check("bob", "short"); !ok {
		t.Fatal("an old short password no longer logs in")
	}
	before, _ := os.ReadFile(path)
	for _, tc := range []struct{ name, account, password string }{
		{"change to a short one", "bob", "eleven-char"},
		{"the same short one again", "bob", "short"},
		{"a new account", "carol", "x"},
	} {
		err := SetPassword(path, tc.account, tc.password)
		if events.ErrorCode(err) != events.Invalid || events.ErrorMessage(err) != "the password is shorter than 12 characters: choose a longer one" {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("a refused password changed the file:\n%s", after)
	}
	if err := SetPassword(path, "bob", "twelve-chars"); err != nil {
		t.Fatalf("12 characters: %v", err)
	}
	if _, ok := passwords.Check("bob", "twelve-chars"); !ok {
		t.Fatal("the new password does not log in")
	}
}

// TestDummyCost: an unknown account is compared with a dummy hash of the
// cost the file's hashes have, so that it takes as long as a known one.
func TestDummyCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts")
	var lines []string
	for _, a := range []string{"bob", "carol", "dave"} {
		h, _ := bcrypt.GenerateFromPassword([]byte(a), bcrypt.MinCost)
		lines = append(lines, a+":"+string(h))
	}
	atomicfile.Write(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	a, err := OpenPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, cost := a.lookup("nobody"); cost != bcrypt.MinCost {
		t.Fatalf("dummy cost %d", cost)
	}
	if c, _ := bcrypt.Cost(dummyHash(bcrypt.MinCost)); c != bcrypt.MinCost {
		t.Fatalf("dummy hash cost %d", c)
	}
	for _, tc := range []struct {
		account, password string
		want              bool
	}{
		{"nobody", "x", false}, {"bob", "bob", true}, {"bob", "carol", false},
	} {
		if _, have := a.Check(tc.account, tc.password); have != tc.want {
			t.Errorf("Check(%q, %q) = %v, want %v", tc.account, tc.password, have, tc.want)
		}
	}
}
