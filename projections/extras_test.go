package projections

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"tokenledger/events"
)

func TestRotationAndGrace(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	c := f.create("bob", "a", secret('A'), nil)
	f.apply(t, tab, 1, c)
	grace := t0.Add(time.Hour).Unix()
	f.apply(t, tab, 2, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: c.TokenID,
		Data: events.TokenRotated{Name: "a", TokenHash: events.HashSecret(secret('B')),
			OldTokenHash: events.HashSecret(secret('A')), GraceUntil: &grace}})
	if r := tab.Validate(secret('B'), "bob", t0); !r.Valid || r.TokenID != c.TokenID || r.Name() != "a" {
		t.Fatalf("new secret: %+v", r)
	}
	if r := tab.Validate(secret('A'), "bob", t0.Add(59*time.Minute)); !r.Valid {
		t.Fatalf("old secret within the grace period: %+v", r)
	}
	if r := tab.Validate(secret('A'), "bob", t0.Add(time.Hour)); r.Valid || r.Reason != ReasonRevoked {
		t.Fatalf("old secret after the grace period: %+v", r)
	}
	// A second rotation without grace stops the second secret at once.
	f.apply(t, tab, 3, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: c.TokenID,
		Data: events.TokenRotated{Name: "a", TokenHash: events.HashSecret(secret('C')),
			OldTokenHash: events.HashSecret(secret('B'))}})
	if r := tab.Validate(secret('B'), "", t0); r.Reason != ReasonRevoked {
		t.Fatalf("second secret after an immediate rotation: %+v", r)
	}
	if rows := tab.List("bob", t0); len(rows) != 1 || rows[0].TokenID != c.TokenID {
		t.Fatalf("a rotation keeps one token: %+v", rows)
	}
	assertSnapshotRoundTrip(t, tab, []string{secret('A'), secret('B'), secret('C')}, t0.Add(30*time.Minute))
}

func TestAllowListAndLastUse(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	c := f.create("bob", "a", secret('A'), nil)
	d := c.Data.(events.TokenCreated)
	d.AllowedIPs, _ = events.ParsePrefixes([]string{"192.0.2.0/24", "2001:db8::/32"})
	c.Data = d
	f.apply(t, tab, 1, c)
	for _, tt := range []struct {
		ip   string
		want bool
	}{{"192.0.2.9", true}, {"::ffff:192.0.2.9", true}, {"2001:db8::7", true}, {"198.51.100.1", false}, {"", false}} {
		var ip netip.Addr
		if tt.ip != "" {
			ip = netip.MustParseAddr(tt.ip)
		}
		r := tab.ValidateFrom(secret('A'), "", ip, t0)
		if r.Valid != tt.want || (!tt.want && r.Reason != ReasonIPDenied) {
			t.Errorf("from %q: %+v, want valid=%v", tt.ip, r, tt.want)
		}
	}
	f.apply(t, tab, 2, events.Event{ID: f.id(), At: t0, Account: "bob", TokenID: c.TokenID,
		Data: events.AllowedIPsSet{Name: "a", AllowedIPs: []events.Prefix{}}})
	if r := tab.ValidateFrom(secret('A'), "", netip.Addr{}, t0); !r.Valid {
		t.Fatalf("an emptied allow-list allows any address: %+v", r)
	}
	used := t0.Add(time.Minute)
	f.apply(t, tab, 3, events.Event{ID: f.id(), At: used, Account: "bob", TokenID: c.TokenID, Data: events.TokenUsed{IP: "192.0.2.9"}})
	rows := tab.List("bob", t0)
	if rows[0].LastUsed == nil || *rows[0].LastUsed != used.Unix() || rows[0].LastIP != "192.0.2.9" || rows[0].AllowedIPs != nil {
		t.Fatalf("row %+v", rows[0])
	}
	if !tab.LastUsed("bob", c.TokenID).Equal(used.Truncate(time.Second)) {
		t.Fatalf("LastUsed %v", tab.LastUsed("bob", c.TokenID))
	}
	assertSnapshotRoundTrip(t, tab, []string{secret('A')}, t0)
}

// assertSnapshotRoundTrip checks that a table's snapshot answers alike.
func assertSnapshotRoundTrip(t *testing.T, tab *Table, secrets []string, now time.Time) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := tab.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	whole := bytes.Clone(buf.Bytes())
	back, err := DecodeTable(&buf, int64(buf.Len()), tab.warn)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(whole) {
		if _, err := DecodeTable(bytes.NewReader(whole[:n]), int64(n), tab.warn); err == nil {
			t.Fatalf("a snapshot cut to %d of its %d bytes was accepted", n, len(whole))
		}
	}
	for _, s := range secrets {
		for _, ip := range []netip.Addr{{}, netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("203.0.113.1")} {
			w, h := tab.ValidateFrom(s, "", ip, now), back.ValidateFrom(s, "", ip, now)
			if w.Valid != h.Valid || w.Reason != h.Reason || w.TokenID != h.TokenID {
				t.Fatalf("after a snapshot: %+v, want %+v", h, w)
			}
		}
	}
	for _, a := range tab.Accounts() {
		w, h := tab.List(a, now), back.List(a, now)
		for i := range w {
			if w[i].Name != h[i].Name || w[i].LastIP != h[i].LastIP || len(w[i].AllowedIPs) != len(h[i].AllowedIPs) ||
				(w[i].LastUsed == nil) != (h[i].LastUsed == nil) {
				t.Fatalf("after a snapshot: %+v, want %+v", h[i], w[i])
			}
		}
	}
}

// TestEncodeWhileValidatingAndApplying: a snapshot reads the table while
// validations read it and changes wait; the race detector watches.
func TestEncodeWhileValidatingAndApplying(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	f.apply(t, tab, 1, f.create("bob", "a", secret('A'), nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			var buf bytes.Buffer
			if _, err := tab.Encode(&buf); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 200 {
		tab.Validate(secret('A'), "", t0)
		tab.List("bob", t0)
		e := f.create("bob", fmt.Sprintf("t%d", i), fmt.Sprintf("%032d", i), nil)
		f.apply(t, tab, uint64(i+2), e)
	}
	<-done
	if tab.Applied() != 201 {
		t.Fatalf("applied %d", tab.Applied())
	}
}
