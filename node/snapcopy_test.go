package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/node"
	"tokenledger/projections"
)

// mustStoppedNodeWithCopy runs a node on an embedded server of its own until
// it has created a token and kept a copy of a snapshot holding it, and
// returns its configuration, to start it again on the same data directory,
// and the token.
func mustStoppedNodeWithCopy(t *testing.T) (node.Config, commands.Created) {
	t.Helper()
	dir := t.TempDir()
	signer, trust := mustKeys(t)
	cfg := node.Config{DataDir: dir, Listen: "127.0.0.1:0", Stream: events.DefaultConfig(), Signer: signer, Trust: trust,
		Parts: node.Snapshots, SnapshotCopy: filepath.Join(dir, "snapshot.copy"), SnapEvents: 1, SnapEvery: time.Minute,
		Warn: 24 * time.Hour, MaxStaleness: 5 * time.Second, StartGC: projections.CatchUpGC}
	ctx := context.Background()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	created, err := n.Ledger().Create(ctx, commands.Create{Account: "bob", Name: "ci", Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	natstest.EventuallyWithin(t, time.Minute, "the snapshot's copy written", func() bool {
		_, err := os.Stat(cfg.SnapshotCopy)
		return err == nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return cfg, created
}

// TestNodeRestartsFromItsSnapshotCopy: a node on its embedded server keeps a
// copy of the snapshot it stores; started again on the same data directory,
// it reads that copy (prefetched while its server starts) and has its
// tokens.
func TestNodeRestartsFromItsSnapshotCopy(t *testing.T) {
	cfg, created := mustStoppedNodeWithCopy(t)
	var log nodetest.Buffer
	cfg.Log = slog.New(slog.NewTextHandler(&log, nil))
	ctx := context.Background()
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		runCtx, stop := context.WithCancel(ctx)
		stop()
		n.Run(runCtx)
	}()
	if !strings.Contains(log.String(), fmt.Sprintf("from=%q", projections.FromCopy)) {
		t.Fatalf("the node did not start from its copy; log:\n%s", log.String())
	}
	if r := n.Table().Validate(created.Secret, "bob", time.Now()); !r.Valid {
		t.Fatalf("the token created before the restart: %+v", r)
	}
}

// TestNodeThatFailsToStartPutsTheCollectorBack: a node that started
// reading its snapshot's copy before its server, with the collector set for
// a start, puts the collector back as it was when the server cannot start.
func TestNodeThatFailsToStartPutsTheCollectorBack(t *testing.T) {
	cfg, _ := mustStoppedNodeWithCopy(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg.Listen = taken.Addr().String()
	before := gcPercent()
	if _, err := node.New(context.Background(), cfg); err == nil {
		t.Fatal("New on an address in use succeeded")
	}
	if gc := gcPercent(); gc != before {
		t.Fatalf("GOGC is %d after the node failed to start, was %d", gc, before)
	}
}

// gcPercent is the collector's GOGC.
func gcPercent() int {
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	return gc
}
