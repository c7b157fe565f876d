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

// listedUse is the listed last use of the account's only token.
func listedUse(t *testing.T, tab *projections.Table, account string) (int64, string) {
	t.Helper()
	rows := tab.List(account, projections.T0)
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
	var f projections.Fixture
	before := f.Create("bob", "a", "A")
	f.Apply(t, tab, 1, before)
	if _, err := used.Record(ctx, events.LastUse{Account: "bob", TokenID: before.TokenID.String(), At: projections.T0, IP: "192.0.2.1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	w := &projections.UseWatcher{Table: tab, Source: used, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	natstest.Eventually(t, "the stored use in the table", func() bool { at, _ := listedUse(t, tab, "bob"); return at == projections.T0.Unix() })

	after := f.Create("carol", "b", "B")
	if _, err := used.Record(ctx, events.LastUse{Account: "carol", TokenID: after.TokenID.String(), At: projections.T0, IP: "192.0.2.2"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "the new use held for its token", func() bool { return projections.HoldsEarlyUse(tab, after.TokenID) })
	f.Apply(t, tab, 2, after)
	if at, ip := listedUse(t, tab, "carol"); at != projections.T0.Unix() || ip != "192.0.2.2" {
		t.Fatalf("carol's use: %d from %q", at, ip)
	}
}
