// Package nodetest assembles a whole ledger node for tests, the way `serve`
// wires one: a stream on a real NATS server, a projection that follows it,
// and a ledger that signs what it appends.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/projections"
)

// Node is one ledger node's parts.
type Node struct {
	Conn     *nats.Conn
	Stream   *events.Stream
	Table    *projections.Table
	Follower *projections.Follower
	Ledger   *commands.Ledger
	Signer   *events.Signer
	Trust    *events.Trust
}

// Options change a node from the defaults.
type Options struct {
	Now    func() time.Time // the clock of the ledger; time.Now by default
	Signer *events.Signer   // the shared deployment key by default
	Trust  []string         // further trusted keys; the node always trusts its own
	Warn   time.Duration    // projections.DefaultWarn by default
	Log    *slog.Logger     // discarded by default
}

var (
	sharedOnce   sync.Once
	sharedSigner *events.Signer
)

// SharedSigner is one signing key for every node of a test binary, as the
// nodes of one deployment may share one.
func SharedSigner(tb testing.TB) *events.Signer {
	sharedOnce.Do(func() {
		seed, err := events.NewSeed()
		if err != nil {
			panic(err)
		}
		if sharedSigner, err = events.NewSigner(seed); err != nil {
			panic(err)
		}
	})
	return sharedSigner
}

// MustNode starts a node on s, waits until its projection has caught up, and
// stops it when the test ends.
func MustNode(tb testing.TB, s *server.Server, o Options) *Node {
	tb.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Signer == nil {
		o.Signer = SharedSigner(tb)
	}
	if o.Warn == 0 {
		o.Warn = projections.DefaultWarn
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	trust, err := events.NewTrust(append(o.Trust, o.Signer.PublicKey())...)
	if err != nil {
		tb.Fatal(err)
	}
	nc := natstest.MustConnect(tb, s)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := events.Ensure(ctx, js, events.DefaultConfig(), events.Seen{})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	table := projections.NewTable(o.Warn)
	f := projections.NewFollower(table, stream, trust, o.Log)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	if err := f.WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	ledger := commands.New(commands.Config{Log: stream, Projection: table, Now: o.Now, Signer: o.Signer, Trust: trust})
	return &Node{Conn: nc, Stream: stream, Table: table, Follower: f, Ledger: ledger, Signer: o.Signer, Trust: trust}
}
