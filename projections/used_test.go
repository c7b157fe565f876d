package projections

import (
	"testing"
	"time"

	"tokenledger/events"
)

// lastUse is the listed last use of the account's only token.
func lastUse(t *testing.T, tab *Table, account string) (int64, string) {
	t.Helper()
	rows := tab.List(account, t0)
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	if rows[0].LastUsed == nil {
		return 0, rows[0].LastIP
	}
	return *rows[0].LastUsed, rows[0].LastIP
}

// TestLastUseKeepsTheLatest: old token.used events, the bucket and snapshots
// all feed one last use per token, and an older one never hides a newer.
func TestLastUseKeepsTheLatest(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	c := f.create("bob", "a", secret('A'), nil)
	f.apply(t, tab, 1, c)
	use := func(at time.Time, ip string) events.LastUse {
		return events.LastUse{Account: "bob", TokenID: c.TokenID.String(), At: at, IP: ip}
	}
	steps := []struct {
		name   string
		do     func()
		wantAt time.Time
		wantIP string
	}{
		{"an old token.used event", func() {
			f.apply(t, tab, 2, events.Event{ID: f.id(), At: t0.Add(time.Minute), Account: "bob", TokenID: c.TokenID, Data: events.TokenUsed{IP: "192.0.2.1"}})
		}, t0.Add(time.Minute), "192.0.2.1"},
		{"an older use from the bucket", func() { tab.NoteUse(use(t0, "192.0.2.2"), false) }, t0.Add(time.Minute), "192.0.2.1"},
		{"a newer use from the bucket", func() { tab.NoteUse(use(t0.Add(2*time.Minute), "192.0.2.3"), false) }, t0.Add(2 * time.Minute), "192.0.2.3"},
		{"an older token.used event", func() {
			f.apply(t, tab, 3, events.Event{ID: f.id(), At: t0.Add(90 * time.Second), Account: "bob", TokenID: c.TokenID, Data: events.TokenUsed{IP: "192.0.2.4"}})
		}, t0.Add(2 * time.Minute), "192.0.2.3"},
		{"a snapshot", func() { tab = mustRoundTrip(t, tab) }, t0.Add(2 * time.Minute), "192.0.2.3"},
		{"an older use after the snapshot", func() { tab.NoteUse(use(t0.Add(time.Minute), "192.0.2.5"), false) }, t0.Add(2 * time.Minute), "192.0.2.3"},
		{"a newer use after the snapshot", func() { tab.NoteUse(use(t0.Add(3*time.Minute), ""), false) }, t0.Add(3 * time.Minute), ""},
	}
	for _, s := range steps {
		s.do()
		if at, ip := lastUse(t, tab, "bob"); at != s.wantAt.Unix() || ip != s.wantIP {
			t.Fatalf("after %s: last use %d from %q, want %d from %q", s.name, at, ip, s.wantAt.Unix(), s.wantIP)
		}
	}
}

// TestEarlyUse: a use recorded by a node ahead of this one waits for its
// token's creation; a use of a token unknown when the watch began is dropped.
func TestEarlyUse(t *testing.T) {
	tab := NewTable(DefaultWarn)
	var f fixture
	early := f.create("bob", "a", secret('A'), nil)
	tab.NoteUse(events.LastUse{Account: "bob", TokenID: early.TokenID.String(), At: t0, IP: "192.0.2.1"}, true)
	f.apply(t, tab, 1, early)
	if at, ip := lastUse(t, tab, "bob"); at != t0.Unix() || ip != "192.0.2.1" {
		t.Fatalf("early use: %d from %q", at, ip)
	}
	stale := f.create("carol", "b", secret('B'), nil)
	tab.NoteUse(events.LastUse{Account: "carol", TokenID: stale.TokenID.String(), At: t0, IP: "192.0.2.2"}, false)
	wrong := f.create("dave", "c", secret('C'), nil)
	tab.NoteUse(events.LastUse{Account: "eve", TokenID: wrong.TokenID.String(), At: t0, IP: "192.0.2.3"}, true)
	f.apply(t, tab, 2, stale)
	f.apply(t, tab, 3, wrong)
	if at, _ := lastUse(t, tab, "carol"); at != 0 {
		t.Fatalf("a use of a token unknown when the watch began was kept: %d", at)
	}
	if at, _ := lastUse(t, tab, "dave"); at != 0 {
		t.Fatalf("another account's use was applied: %d", at)
	}
	if len(tab.early) != 0 {
		t.Fatalf("%d early uses left", len(tab.early))
	}
}
