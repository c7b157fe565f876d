package projections_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"slices"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// TestStartingNodeChecksWhatItTookOnTrust: a starting node checks chains as it
// replays but signatures only at each account's newest event. A forgery that
// links into a chain, in the middle or at the end, must still never count.
func TestStartingNodeChecksWhatItTookOnTrust(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	ctx := context.Background()
	op := events.Actor{Kind: events.ActorOperator, Name: "t"}
	seed, _ := access.NewSeed()
	mallory, _ := access.NewSigner(seed)

	create := func(account, name string) string {
		t.Helper()
		c, err := n.Ledger.Create(ctx, commands.Create{Account: account, Name: name, Actor: op})
		if err != nil {
			t.Fatal(err)
		}
		return c.Secret
	}
	// forge appends, by hand, a creation that continues the account's chain
	// (anyone can compute the head) but is signed by an untrusted key.
	forge := func(account, name string) string {
		t.Helper()
		var head events.Hash
		n.Stream.Read(ctx, events.ReadOptions{Account: account}, func(m events.Msg) error {
			if m.Err == nil && n.Trust.Verify(m.Raw, m.Event) == nil && events.Link(m.Event, head) == nil {
				head = events.Digest(m.Raw)
			}
			return nil
		})
		secret := events.NewSecret()
		e := events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: events.NewTokenID(), Actor: op,
			Data: events.TokenCreated{Name: name, TokenHash: events.HashSecret(secret), FullAccess: true}}
		mallory.Sign(&e, head)
		last, _ := n.Stream.LastSeq(ctx, account)
		if _, err := n.Stream.Append(ctx, account, last, []events.Event{e}); err != nil {
			t.Fatal(err)
		}
		return secret
	}

	good1 := create("bob", "a")
	forgedMiddle := forge("bob", "evil")
	good2 := create("bob", "b") // the ledger chains past the forgery
	create("carol", "c")
	forgedTip := forge("carol", "evil")
	create("dave", "d")

	var logged nodetest.Buffer
	later := nodetest.MustNode(t, srv, nodetest.Options{Log: slog.New(slog.NewTextHandler(&logged, nil))})
	now := time.Now()
	for _, tt := range []struct {
		secret string
		valid  bool
	}{{good1, true}, {good2, true}, {forgedMiddle, false}, {forgedTip, false}} {
		if r := later.Table.Validate(tt.secret, "", now); r.Valid != tt.valid {
			t.Errorf("validate on the starting node: %+v, want valid=%v", r, tt.valid)
		}
	}
	if rows := later.Table.List("bob", now); len(rows) != 2 || rows[0].Name != "a" || rows[1].Name != "b" {
		t.Fatalf("bob on the starting node: %+v", rows)
	}
	if rows := later.Table.List("carol", now); len(rows) != 1 || rows[0].Name != "c" {
		t.Fatalf("carol on the starting node: %+v", rows)
	}
	// Bob's newest event in the chain the replay followed is the forgery
	// (his good second event names the one before it), and carol's is: both
	// are checked event by event. Dave's good newest event vouches for his.
	var rechecked []string
	for _, m := range regexp.MustCompile(`newest event does not verify.* account=(\w+)`).FindAllStringSubmatch(logged.String(), -1) {
		rechecked = append(rechecked, m[1])
	}
	if slices.Sort(rechecked); !slices.Equal(rechecked, []string{"bob", "carol"}) {
		t.Errorf("accounts checked event by event: %q, want bob and carol", rechecked)
	}
	// The table the starting node built is the one the first node built
	// verifying every event as it came.
	for _, acc := range []string{"bob", "carol"} {
		w, h := n.Table.List(acc, now), later.Table.List(acc, now)
		if len(w) != len(h) {
			t.Fatalf("%s: %+v, want %+v", acc, h, w)
		}
	}
}

// TestStartingNodeOverManyBatches: a start replays through a pipeline of
// batches (one goroutine reads, another decodes and applies); over many
// batches and accounts it builds the table the writing node holds.
func TestStartingNodeOverManyBatches(t *testing.T) {
	srv := natstest.MustServer(t)
	ctx := context.Background()
	// Written straight to the stream: a node following it live would verify
	// every signature, slow under the race detector.
	js, err := natsjs.New(natstest.MustConnect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := jetstream.Ensure(ctx, js, events.DefaultConfig(), jetstream.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	signer := nodetest.SharedSigner(t)
	op := events.Actor{Kind: events.ActorOperator, Name: "t"}
	accounts := []string{"a1", "a2", "a3", "a4", "a5"}
	heads := make(map[string]events.Hash)
	lasts := make(map[string]uint64)
	var secrets []string
	for i := range 2500 {
		account := accounts[i%len(accounts)]
		secret := events.NewSecret()
		e := events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: events.NewTokenID(), Actor: op,
			Data: events.TokenCreated{Name: fmt.Sprintf("t%d", i), TokenHash: events.HashSecret(secret), FullAccess: true}}
		head, err := signer.Sign(&e, heads[account])
		if err != nil {
			t.Fatal(err)
		}
		seq, err := stream.Append(ctx, account, lasts[account], []events.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		heads[account], lasts[account] = head, seq
		secrets = append(secrets, secret)
	}
	later := nodetest.MustNode(t, srv, nodetest.Options{})
	if later.Table.Applied() != 2500 {
		t.Fatalf("the starting node is at %d, want 2500", later.Table.Applied())
	}
	now := time.Now()
	for _, s := range secrets {
		if r := later.Table.Validate(s, "", now); !r.Valid {
			t.Fatalf("a token the starting node should know: %+v", r)
		}
	}
	for _, acc := range accounts {
		if rows := later.Table.List(acc, now); len(rows) != 500 || rows[0].Name != fmt.Sprintf("t%d", slices.Index(accounts, acc)) {
			t.Fatalf("%s on the starting node: %d rows", acc, len(rows))
		}
	}
}

// TestCatchUpGCIsRestored: the collector's setting for the first catch-up
// is put back once the node is ready.
func TestCatchUpGCIsRestored(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	ctx := context.Background()
	if _, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", Actor: events.Actor{Kind: events.ActorOperator, Name: "t"}}); err != nil {
		t.Fatal(err)
	}
	before := debug.SetGCPercent(150)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	f := projections.NewFollower(projections.NewTable(projections.DefaultWarn), n.Stream, n.Trust, quiet)
	f.StartGC = projections.CatchUpGC
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	if err := f.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if gc := debug.SetGCPercent(150); gc != 150 {
		t.Fatalf("GOGC is %d once ready, want 150 back", gc)
	}
}
