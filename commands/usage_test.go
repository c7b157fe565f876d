package commands_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
)

// TestUseIsRecordedOncePerPeriod: many validations of one token within the
// period make one token.used event; after the period, one more.
func TestUseIsRecordedOncePerPeriod(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	n := nodetest.MustNode(t, natstest.MustServer(t), nodetest.Options{Now: now})
	ctx := context.Background()
	c, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	r := commands.NewUseRecorder(n.Ledger, n.Table.LastUsed, 10*time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	uses := func() int {
		count := 0
		n.Stream.Read(ctx, events.ReadOptions{Account: "bob"}, func(m events.Msg) error {
			if m.Err == nil && m.Event.Type() == events.TypeUsed {
				count++
			}
			return nil
		})
		return count
	}
	for range 100 {
		r.Seen("bob", c.Event.TokenID, "192.0.2.1")
	}
	natstest.Eventually(t, "one use recorded", func() bool { return uses() == 1 && !n.Table.LastUsed("bob", c.Event.TokenID).IsZero() })
	for range 100 {
		r.Seen("bob", c.Event.TokenID, "192.0.2.1")
	}
	clock.Add(int64(11 * time.Minute))
	r.Seen("bob", c.Event.TokenID, "192.0.2.2")
	// The recorder does not wait for its own event to be applied, so wait for
	// the table too, not just the stream.
	natstest.Eventually(t, "a second use after the period, applied", func() bool {
		return uses() == 2 && n.Table.List("bob", now())[0].LastIP == "192.0.2.2"
	})
	if uses() != 2 {
		t.Fatalf("%d uses recorded, want 2", uses())
	}
}
