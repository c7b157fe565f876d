package accounts

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestGuardBounds: however many addresses and accounts fail, the guard keeps
// a bounded number, keeps the persistent guessers, and gives a few.
func TestGuardBounds(t *testing.T) {
	g := NewGuard()
	heavy := netip.MustParseAddr("192.0.2.1")
	for range 50 {
		g.Failed(Token, heavy)
	}
	for i := range 3 * MaxSources {
		g.Failed(Password, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if len(g.sources) > MaxSources {
		t.Fatalf("%d sources tracked", len(g.sources))
	}
	f := g.Failures()
	if top := f.Sources; len(top) != TopSources || top[0] != (SourceFailures{"192.0.2.1", 50}) {
		t.Fatalf("top sources %v", top[:min(len(top), 3)])
	}
	if f.ByKind[Password] != 3*MaxSources || f.ByKind[Token] != 50 || f.ByKind[Validation] != 0 {
		t.Fatalf("totals %v", f.ByKind)
	}

	// An IPv6 host counts as its /64, whichever addresses of it it uses.
	g = NewGuard()
	g.Failed(Token, netip.MustParseAddr("2001:db8:1:2::1"))
	g.Failed(Token, netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	g.Failed(Token, netip.Addr{})
	if top := g.Failures().Sources; len(top) != 2 || top[0] != (SourceFailures{"2001:db8:1:2::/64", 2}) || top[1].Source != "unknown" {
		t.Fatalf("IPv6 sources %v", top)
	}

	// Accounts that failed: bounded too, the stale ones forgotten first.
	now := time.Unix(1_800_000_000, 0)
	for i := range maxLocked + 500 {
		g.LoginFailed(fmt.Sprintf("a%d", i), now)
	}
	if len(g.accounts) > maxLocked {
		t.Fatalf("%d accounts tracked", len(g.accounts))
	}
	for range lockAfter {
		g.LoginFailed("bob", now)
	}
	if g.Locked("bob", now) != lockFirst {
		t.Fatal("bob is not locked")
	}
	later := now.Add(lockReset + time.Second)
	for i := range maxLocked {
		g.LoginFailed(fmt.Sprintf("b%d", i), later)
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
