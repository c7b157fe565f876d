package projections_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// The watcher's test is outside the package, since the adapter it watches
// (package jetstream) imports projections for its compile-time checks.

var useT0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// useFixture makes token creations and applies them, each account's chained.
type useFixture struct {
	heads map[string]events.Hash
}

func (f *useFixture) create(account, name, secret string, _ *time.Time) events.Event {
	return events.Event{ID: events.NewID(), At: useT0, Account: account, TokenID: events.NewTokenID(),
		Data: events.TokenCreated{Name: name, TokenHash: events.HashSecret(secret), FullAccess: true}}
}

func (f *useFixture) apply(t *testing.T, tab *projections.Table, seq uint64, e events.Event) {
	t.Helper()
	if f.heads == nil {
		f.heads = make(map[string]events.Hash)
	}
	if h := f.heads[e.Account]; h != (events.Hash{}) {
		e.Prev = h.String()
	}
	raw, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Apply(seq, e, events.Digest(raw)); err != nil {
		t.Fatalf("apply %d: %v", seq, err)
	}
	f.heads[e.Account] = events.Digest(raw)
}

// listedUse is the listed last use of the account's only token.
func listedUse(t *testing.T, tab *projections.Table, account string) (int64, string) {
	t.Helper()
	rows := tab.List(account, useT0)
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	if rows[0].LastUsed == nil {
		return 0, rows[0].LastIP
	}
	return *rows[0].LastUsed, rows[0].LastIP
}

// TestUseWatcher: on a real NATS, the watcher brings the bucket's uses into
// the table, those stored before it began and those recorded after, even
// before the token's creation reaches the table.
func TestUseWatcher(t *testing.T) {
	js, err := natsjs.New(natstest.MustConnect(t, natstest.MustServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	used, err := jetstream.OpenUsed(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tab := projections.NewTable(projections.DefaultWarn)
	var f useFixture
	before := f.create("bob", "a", "A", nil)
	f.apply(t, tab, 1, before)
	if _, err := used.Record(ctx, events.LastUse{Account: "bob", TokenID: before.TokenID.String(), At: useT0, IP: "192.0.2.1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	w := &projections.UseWatcher{Table: tab, Source: used, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	natstest.Eventually(t, "the stored use in the table", func() bool { at, _ := listedUse(t, tab, "bob"); return at == useT0.Unix() })

	after := f.create("carol", "b", "B", nil)
	if _, err := used.Record(ctx, events.LastUse{Account: "carol", TokenID: after.TokenID.String(), At: useT0, IP: "192.0.2.2"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "the new use held for its token", func() bool { return projections.HoldsEarlyUse(tab, after.TokenID) })
	f.apply(t, tab, 2, after)
	if at, ip := listedUse(t, tab, "carol"); at != useT0.Unix() || ip != "192.0.2.2" {
		t.Fatalf("carol's use: %d from %q", at, ip)
	}
}
