// Package nodetest starts ledger nodes for tests, built by package node as
// `serve` builds its own: a stream on a real NATS server, a projection that
// follows it, and a ledger that signs what it appends. A test node runs no
// other part: a test starts the service, HTTP or notices it is about with
// settings of its own.
package nodetest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"tokenledger/access"
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/jetstream"
	"tokenledger/node"
	"tokenledger/projections"
)

// Node is one ledger node's parts.
type Node struct {
	Conn     *nats.Conn
	Stream   *jetstream.Stream
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
		seed, err := access.NewSeed()
		if err != nil {
			panic(err)
		}
		if sharedSigner, err = access.NewSigner(seed); err != nil {
			panic(err)
		}
	})
	return sharedSigner
}

// MustKeys is a fresh signing key of a node's own and the trust of it
// alone, for a test whose nodes must not share SharedSigner's.
func MustKeys(tb testing.TB) (*events.Signer, *events.Trust) {
	tb.Helper()
	seed, err := access.NewSeed()
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := access.NewSigner(seed)
	if err != nil {
		tb.Fatal(err)
	}
	trust, err := access.NewTrust(signer.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	return signer, trust
}

// MustNode starts a node on s, waits until its projection has caught up, and
// stops it when the test ends.
func MustNode(tb testing.TB, s *server.Server, o Options) *Node {
	tb.Helper()
	return MustNodeAt(tb, s.ClientURL(), o)
}

// MustNodeAt is MustNode on the server at url, one in a process of its own
// (natstest.Processes).
func MustNodeAt(tb testing.TB, url string, o Options) *Node {
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
	trust, err := access.NewTrust(append(o.Trust, o.Signer.PublicKey())...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, node.Config{
		Join: url,
		// A private inbox prefix, as every role of an authenticated
		// deployment has: the service answers commands only there (see
		// package access), and names their actor after it.
		Auth:   []nats.Option{nats.Timeout(10 * time.Second), nats.CustomInboxPrefix("_INBOX_test")},
		Stream: events.DefaultConfig(), Signer: o.Signer, Trust: trust, Warn: o.Warn, Now: o.Now, Log: o.Log,
	})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	if err := n.Follower().WaitReady(ctx); err != nil {
		tb.Fatal(err)
	}
	return &Node{Conn: n.Conn(), Stream: n.Stream(), Table: n.Table(), Follower: n.Follower(), Ledger: n.Ledger(), Signer: o.Signer, Trust: trust}
}
