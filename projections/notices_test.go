package projections_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// TestExpiryNoticesGoOutOnceAcrossNodes: two nodes check the same tokens;
// each token's expiring and expired notices are published once in all.
func TestExpiryNoticesGoOutOnceAcrossNodes(t *testing.T) {
	var clock atomic.Int64
	start := time.Now()
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	srv := natstest.MustServer(t)
	a := nodetest.MustNode(t, srv, nodetest.Options{Now: now})
	b := nodetest.MustNode(t, srv, nodetest.Options{Now: now})
	ctx := context.Background()
	exp := start.Add(10 * 24 * time.Hour).Unix()
	op := events.Actor{Kind: events.ActorOperator, Name: "t"}
	for _, name := range []string{"x", "y"} {
		if _, err := a.Ledger.Create(ctx, commands.Create{Account: "bob", Name: name, ExpiresAt: &exp, Actor: op}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "forever", Actor: op}); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "node b to see the tokens", func() bool { return len(b.Table.List("bob", now())) == 3 })

	var mu sync.Mutex
	got := map[string]int{}
	sub, err := a.Conn.Subscribe("tokens.notices.>", func(m *nats.Msg) {
		var n projections.Notice
		json.Unmarshal(m.Data, &n)
		mu.Lock()
		got[m.Subject+" "+n.Name]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	a.Conn.Flush()

	js, _ := natsjs.New(a.Conn)
	claims, err := jetstream.OpenClaims(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	notifier := func(n *nodetest.Node) *projections.Notifier {
		return &projections.Notifier{Table: n.Table, Claims: claims, Publish: n.Conn.Publish, Prefix: "tokens",
			Node: n.Signer.PublicKey(), Now: now, Log: quiet}
	}
	na, nb := notifier(a), notifier(b)
	check := func() {
		na.Check(ctx)
		nb.Check(ctx)
		na.Check(ctx)
	}
	check() // nothing is due
	clock.Store(start.Add(4 * 24 * time.Hour).UnixNano())
	check()
	clock.Store(start.Add(11 * 24 * time.Hour).UnixNano())
	check()
	want := map[string]int{
		"tokens.notices.expiring.bob x": 1, "tokens.notices.expiring.bob y": 1,
		"tokens.notices.expired.bob x": 1, "tokens.notices.expired.bob y": 1,
	}
	natstest.Eventually(t, "four notices", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 4
	})
	// Whatever either node published has reached the subscriber once both
	// connections have made a round trip.
	b.Conn.Flush()
	a.Conn.Flush()
	mu.Lock()
	defer mu.Unlock()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d notices, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("notices %v", got)
	}
}

func TestCountByStatus(t *testing.T) {
	n := nodetest.MustNode(t, natstest.MustServer(t), nodetest.Options{})
	ctx := context.Background()
	op := events.Actor{Kind: events.ActorOperator, Name: "t"}
	soon := time.Now().Add(time.Hour).Unix()
	n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", Actor: op})
	n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "b", ExpiresAt: &soon, Actor: op})
	c := n.Table.CountByStatus(time.Now())
	if c[projections.Active] != 1 || c[projections.Expiring] != 1 || c[projections.Expired] != 0 {
		t.Fatalf("counts %v", c)
	}
	if c := n.Table.CountByStatus(time.Now().Add(2 * time.Hour)); c[projections.Expired] != 1 {
		t.Fatalf("counts later %v", c)
	}
}
