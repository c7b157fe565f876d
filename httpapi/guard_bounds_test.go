package httpapi

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"tokenledger/internal/atomicfile"

	"golang.org/x/crypto/bcrypt"
)

// TestGuardBounds: however many addresses and accounts fail, the guard keeps
// a bounded number, keeps the persistent guessers, and /metrics shows a few.
func TestGuardBounds(t *testing.T) {
	g := NewGuard()
	heavy := netip.MustParseAddr("192.0.2.1")
	for range 50 {
		g.failed(failToken, heavy)
	}
	for i := range 3 * maxSources {
		g.failed(failPassword, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if len(g.sources) > maxSources {
		t.Fatalf("%d sources tracked", len(g.sources))
	}
	total, top, _ := g.snapshot()
	if len(top) != topSources || top[0].source != "192.0.2.1" || top[0].n != 50 {
		t.Fatalf("top sources %v", top[:min(len(top), 3)])
	}
	if total[failPassword] != 3*maxSources || total[failToken] != 50 {
		t.Fatalf("totals %v", total)
	}

	// An IPv6 host counts as its /64, whichever addresses of it it uses.
	g = NewGuard()
	g.failed(failToken, netip.MustParseAddr("2001:db8:1:2::1"))
	g.failed(failToken, netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	g.failed(failToken, netip.Addr{})
	if _, top, _ := g.snapshot(); len(top) != 2 || top[0] != (sourceFailures{"2001:db8:1:2::/64", 2}) || top[1].source != "unknown" {
		t.Fatalf("IPv6 sources %v", top)
	}

	// Accounts that failed: bounded too, the stale ones forgotten first.
	now := time.Unix(1_800_000_000, 0)
	for i := range maxLocked + 500 {
		g.loginFailed(fmt.Sprintf("a%d", i), now)
	}
	if len(g.accounts) > maxLocked {
		t.Fatalf("%d accounts tracked", len(g.accounts))
	}
	for range lockAfter {
		g.loginFailed("bob", now)
	}
	if g.locked("bob", now) != lockFirst {
		t.Fatal("bob is not locked")
	}
	later := now.Add(lockReset + time.Second)
	for i := range maxLocked {
		g.loginFailed(fmt.Sprintf("b%d", i), later)
	}
	if len(g.accounts) > maxLocked {
		t.Fatalf("%d accounts tracked", len(g.accounts))
	}
}

func TestLockFor(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{5, 5 * time.Second}, {6, 10 * time.Second}, {7, 20 * time.Second}, {12, 640 * time.Second},
		{13, 15 * time.Minute}, {1000, 15 * time.Minute},
	} {
		if have := lockFor(tc.n); have != tc.want {
			t.Errorf("lockFor(%d) = %v, want %v", tc.n, have, tc.want)
		}
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
	a, err := OpenAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, cost := a.lookup("nobody"); cost != bcrypt.MinCost {
		t.Fatalf("dummy cost %d", cost)
	}
	if c, _ := bcrypt.Cost(dummyHash(bcrypt.MinCost)); c != bcrypt.MinCost {
		t.Fatalf("dummy hash cost %d", c)
	}
	if a.Check("nobody", "x") || !a.Check("bob", "bob") || a.Check("bob", "carol") {
		t.Fatal("Check")
	}
}
