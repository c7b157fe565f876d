package commands_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// testClock is a clock the test moves; every node of a test shares one.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// node starts a node on s that keeps this clock.
func (c *testClock) node(t *testing.T, s *server.Server) *nodetest.Node {
	return nodetest.MustNode(t, s, nodetest.Options{Now: c.Now})
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// usesNode is a node with its last-use parts running as serve runs them: a
// recorder, and a watcher that feeds the node's table.
type usesNode struct {
	*nodetest.Node
	Uses *commands.UseRecorder
	Used *jetstream.Used
	JS   natsjs.JetStream
}

func mustUses(t *testing.T, n *nodetest.Node, name string, clk *testClock, every time.Duration) *usesNode {
	t.Helper()
	js, err := natsjs.New(n.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	used, err := jetstream.OpenUsed(ctx, js, events.DefaultConfig())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	uses := commands.NewUses(commands.UseConfig{Store: used, Node: name, Now: clk.Now, LastUsed: n.Table.LastUsed, Every: every, Log: discard()})
	watcher := &projections.UseWatcher{Table: n.Table, Source: used, Log: discard()}
	var wg sync.WaitGroup
	wg.Go(func() { uses.Run(ctx) })
	wg.Go(func() { watcher.Run(ctx) }) // MustNode has waited for the follower to catch up
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &usesNode{Node: n, Uses: uses, Used: used, JS: js}
}

// last is the token's last use as the bucket holds it.
func (n *usesNode) last(t *testing.T, account string, id events.TokenID) (events.LastUse, uint64, bool) {
	t.Helper()
	u, rev, ok, err := n.Used.Last(context.Background(), account, id.String())
	if err != nil {
		t.Fatal(err)
	}
	return u, rev, ok
}

// writes is how many values were ever written to the last-use bucket.
func (n *usesNode) writes(t *testing.T) uint64 {
	t.Helper()
	s, err := n.JS.Stream(context.Background(), "KV_TOKENS_USED")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// listed is the live token's row in the node's table.
func listed(n *nodetest.Node, account string, id events.TokenID, now time.Time) (projections.Row, bool) {
	for _, r := range n.Table.List(account, now) {
		if r.TokenID == id {
			return r, true
		}
	}
	return projections.Row{}, false
}

// usedEvents counts the token.used events of the account in the stream.
func usedEvents(t *testing.T, n *nodetest.Node, account string) int {
	t.Helper()
	count := 0
	err := n.Stream.Read(context.Background(), events.ReadOptions{Account: account}, func(m events.Msg) error {
		if m.Err == nil && m.Event.Type() == events.TypeUsed {
			count++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return count
}

func mustCreate(t *testing.T, n *nodetest.Node, account, name string) events.TokenID {
	t.Helper()
	c, err := n.Ledger.Create(context.Background(), commands.Create{Account: account, Name: name, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	return c.Event.TokenID
}

// TestUseIsRecordedOncePerPeriodAcrossNodes: two nodes on one server see the
// same token validate many times within one period: the bucket is written
// once, the account's sequence on the stream does not move, and both nodes
// list the use. After the period one more use is recorded. A node started
// later lists the last use too.
func TestUseIsRecordedOncePerPeriodAcrossNodes(t *testing.T) {
	const every = 10 * time.Minute
	clk := newTestClock()
	s := natstest.MustServer(t)
	n1 := mustUses(t, clk.node(t, s), "n1", clk, every)
	n2 := mustUses(t, clk.node(t, s), "n2", clk, every)
	ctx := context.Background()
	a := mustCreate(t, n1.Node, "bob", "a")
	// A token of each node's own, noted after the flood: once its use is
	// in the bucket, the node's recorder has handled every note before it.
	mark1, mark2 := mustCreate(t, n1.Node, "bob", "mark1"), mustCreate(t, n1.Node, "bob", "mark2")
	natstest.Eventually(t, "node 2 to hold the tokens", func() bool { _, ok := listed(n2.Node, "bob", mark2, clk.Now()); return ok })
	seq, err := n1.Stream.LastSeq(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}

	for range 200 {
		n1.Uses.Seen("bob", a, "192.0.2.1")
		n2.Uses.Seen("bob", a, "192.0.2.1")
	}
	n1.Uses.Seen("bob", mark1, "192.0.2.9")
	n2.Uses.Seen("bob", mark2, "192.0.2.9")
	natstest.Eventually(t, "both recorders through their notes", func() bool {
		_, _, ok1 := n1.last(t, "bob", mark1)
		_, _, ok2 := n2.last(t, "bob", mark2)
		return ok1 && ok2
	})
	if w := n1.writes(t); w != 3 {
		t.Fatalf("%d writes to the bucket for 3 tokens used within one period, want 3", w)
	}
	if after, err := n1.Stream.LastSeq(ctx, "bob"); err != nil || after != seq {
		t.Fatalf("the account's last sequence moved from %d to %d (%v)", seq, after, err)
	}
	for i, n := range []*usesNode{n1, n2} {
		natstest.Eventually(t, fmt.Sprintf("node %d to list the use", i+1), func() bool {
			r, _ := listed(n.Node, "bob", a, clk.Now())
			return r.LastUsed != nil && *r.LastUsed == clk.Now().Unix() && r.LastIP == "192.0.2.1"
		})
	}

	clk.Add(every + time.Second)
	n2.Uses.Seen("bob", a, "192.0.2.2")
	for i, n := range []*usesNode{n1, n2} {
		natstest.Eventually(t, fmt.Sprintf("node %d to list the use after the period", i+1), func() bool {
			r, _ := listed(n.Node, "bob", a, clk.Now())
			return r.LastUsed != nil && *r.LastUsed == clk.Now().Unix() && r.LastIP == "192.0.2.2"
		})
	}
	if u, _, _ := n1.last(t, "bob", a); u.Node != "n2" || n1.writes(t) != 4 {
		t.Fatalf("after the period: recorded by %q, %d writes; want n2, 4", u.Node, n1.writes(t))
	}
	if got := usedEvents(t, n1.Node, "bob"); got != 0 {
		t.Fatalf("%d token.used events written to the stream", got)
	}

	n3 := mustUses(t, clk.node(t, s), "n3", clk, every)
	natstest.Eventually(t, "a node started later to list the last use", func() bool {
		r, _ := listed(n3.Node, "bob", a, clk.Now())
		return r.LastUsed != nil && *r.LastUsed == clk.Now().Unix() && r.LastIP == "192.0.2.2"
	})
}

// TestRevokeRacingUsesNeverConflicts: while two nodes record a flood of
// uses, each well past the period so that every one is written, revokes on
// both nodes all succeed at the first try of the caller.
func TestRevokeRacingUsesNeverConflicts(t *testing.T) {
	const every = time.Minute
	clk := newTestClock()
	s := natstest.MustServer(t)
	n1 := mustUses(t, clk.node(t, s), "n1", clk, every)
	n2 := mustUses(t, clk.node(t, s), "n2", clk, every)
	ctx := context.Background()
	const tokens = 20
	ids := make([]events.TokenID, tokens)
	for i := range ids {
		ids[i] = mustCreate(t, n1.Node, "bob", fmt.Sprintf("t%d", i))
	}
	natstest.Eventually(t, "node 2 to hold the tokens", func() bool { return len(n2.Table.List("bob", clk.Now())) == tokens })

	stop := make(chan struct{})
	var flood sync.WaitGroup
	flood.Go(func() {
		for {
			for _, id := range ids {
				select {
				case <-stop:
					return
				default:
				}
				clk.Add(2 * every)
				n1.Uses.Seen("bob", id, "192.0.2.1")
				n2.Uses.Seen("bob", id, "192.0.2.2")
			}
		}
	})
	natstest.Eventually(t, "the flood to write", func() bool { return n1.writes(t) >= 2*tokens })
	for i := range tokens {
		n := []*usesNode{n1, n2}[i%2]
		if err := n.Ledger.Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{fmt.Sprintf("t%d", i)}, Actor: operator}); err != nil {
			t.Errorf("revoke t%d on node %d during the flood: %v", i, i%2+1, err)
		}
	}
	written := n1.writes(t)
	close(stop)
	flood.Wait()
	if rows := n1.Table.List("bob", clk.Now()); len(rows) != 0 {
		t.Fatalf("%d tokens left", len(rows))
	}
	if got := usedEvents(t, n1.Node, "bob"); got != 0 {
		t.Fatalf("%d token.used events written to the stream", got)
	}
	t.Logf("%d last uses written while revoking", written)
}

// TestOldUseEventsStillCount: token.used events that nodes wrote before last
// uses moved to the bucket still give last_used, stay in the history, and a
// newer use from the bucket takes over.
func TestOldUseEventsStillCount(t *testing.T) {
	clk := newTestClock()
	s := natstest.MustServer(t)
	n1 := clk.node(t, s)
	ctx := context.Background()
	a := mustCreate(t, n1, "bob", "a")
	at := clk.Now().Truncate(time.Second)
	// An event as nodes wrote them before the bucket.
	if err := n1.Ledger.RecordUse(ctx, commands.Use{Account: "bob", TokenID: a, IP: "192.0.2.7", At: at}); err != nil {
		t.Fatal(err)
	}
	// A node started now replays the event.
	n2 := mustUses(t, clk.node(t, s), "n2", clk, time.Minute)
	if r, _ := listed(n2.Node, "bob", a, clk.Now()); r.LastUsed == nil || *r.LastUsed != at.Unix() || r.LastIP != "192.0.2.7" {
		t.Fatalf("last use from the old event: %+v", r)
	}
	var types []string
	err := projections.History(ctx, n2.Stream, projections.HistoryFilter{Account: "bob"}, func(m events.Msg) error {
		types = append(types, m.Event.Type())
		return nil
	})
	if err != nil || len(types) != 2 || types[1] != events.TypeUsed {
		t.Fatalf("history %v (%v)", types, err)
	}
	// Within the period of the old event nothing is recorded; after it, the
	// bucket's use is listed.
	n2.Uses.Seen("bob", a, "192.0.2.8")
	clk.Add(2 * time.Minute)
	n2.Uses.Seen("bob", a, "192.0.2.9")
	natstest.Eventually(t, "the newer use listed", func() bool {
		r, _ := listed(n2.Node, "bob", a, clk.Now())
		return r.LastUsed != nil && *r.LastUsed == clk.Now().Unix() && r.LastIP == "192.0.2.9"
	})
	if n2.writes(t) != 1 {
		t.Fatalf("%d writes, want 1", n2.writes(t))
	}
}
