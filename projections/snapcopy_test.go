package projections_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// copyCase is a node with one event, its snapshot store, and a copy's path.
type copyCase struct {
	n     *nodetest.Node
	js    natsjs.JetStream
	store *jetstream.Snapshots
	kept  *projections.SnapshotCopy
}

func mustCopyCase(t *testing.T) *copyCase {
	t.Helper()
	n := nodetest.MustNode(t, natstest.MustServer(t), nodetest.Options{})
	c := &copyCase{n: n, kept: &projections.SnapshotCopy{Path: filepath.Join(t.TempDir(), "snapshot.copy")}}
	c.create(t, "a")
	c.js, _ = natsjs.New(n.Conn)
	var err error
	if c.store, err = jetstream.OpenSnapshots(context.Background(), c.js, events.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *copyCase) create(t *testing.T, name string) {
	t.Helper()
	if _, err := c.n.Ledger.Create(context.Background(), commands.Create{Account: "bob", Name: name, Actor: events.Actor{Kind: events.ActorOperator, Name: "t"}}); err != nil {
		t.Fatal(err)
	}
	mustBeLevel(t, c.n)
}

// save stores a snapshot signed by signer, with a copy when kept is set.
func (c *copyCase) save(t *testing.T, signer *events.Signer, kept *projections.SnapshotCopy) {
	t.Helper()
	s := &projections.Snapshotter{Table: c.n.Table, Store: c.store, Copy: kept, Stream: c.n.Stream, Signer: signer, Log: quiet}
	if err := s.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// restore restores with the copy and says at what sequence, and from where
// the log says the table came.
func (c *copyCase) restore(t *testing.T) (uint64, string) {
	t.Helper()
	var log bytes.Buffer
	restored := projections.Restore(context.Background(), c.store, c.kept, c.n.Stream, c.n.Trust, projections.DefaultWarn,
		slog.New(slog.NewTextHandler(&log, nil)))
	return restored.Applied(), log.String()
}

// fromLog is how Restore's log line names where the table came from.
func fromLog(from string) string { return fmt.Sprintf("from=%q", from) }

func (c *copyCase) dropStored(t *testing.T) {
	t.Helper()
	obs, err := c.js.ObjectStore(context.Background(), "TOKENS_SNAPSHOTS")
	if err == nil {
		err = obs.Delete(context.Background(), "table")
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotCopyIsReadInsteadOfTheStore: a node keeps a copy of the
// snapshot it stores, private to it, and starts from it; it still does so
// when the store has lost its snapshot.
func TestSnapshotCopyIsReadInsteadOfTheStore(t *testing.T) {
	c := mustCopyCase(t)
	c.save(t, c.n.Signer, c.kept)
	st, err := os.Stat(c.kept.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("the copy's mode is %o, want 600", st.Mode().Perm())
	}
	want := c.n.Table.Applied()
	if seq, log := c.restore(t); seq != want || !strings.Contains(log, fromLog(projections.FromCopy)) {
		t.Fatalf("restored at %d (want %d); log: %s", seq, want, log)
	}
	c.dropStored(t)
	if seq, log := c.restore(t); seq != want || !strings.Contains(log, fromLog(projections.FromCopy)) {
		t.Fatalf("with no snapshot in the store: restored at %d (want %d); log: %s", seq, want, log)
	}
	if entries, _ := os.ReadDir(filepath.Dir(c.kept.Path)); len(entries) != 1 {
		t.Errorf("the copy's directory holds %d entries, want the copy only", len(entries))
	}
}

// TestSnapshotCopyOlderThanTheStoreIsNotUsed: another node stored a newer
// snapshot; the start downloads that one.
func TestSnapshotCopyOlderThanTheStoreIsNotUsed(t *testing.T) {
	c := mustCopyCase(t)
	c.save(t, c.n.Signer, c.kept)
	c.create(t, "b")
	c.save(t, c.n.Signer, nil)
	want := c.n.Table.Applied()
	if seq, log := c.restore(t); seq != want || !strings.Contains(log, fromLog(projections.FromStore)) {
		t.Fatalf("restored at %d (want %d); log: %s", seq, want, log)
	}
}

// TestSnapshotCopyIsTrustedNoMoreThanTheStore: a copy changed on the disk,
// or signed by a key the node does not trust, is not used: the start
// downloads the store's snapshot, or replays the stream when there is none.
func TestSnapshotCopyIsTrustedNoMoreThanTheStore(t *testing.T) {
	c := mustCopyCase(t)
	c.save(t, c.n.Signer, c.kept)
	want := c.n.Table.Applied()
	raw, err := os.ReadFile(c.kept.Path)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-2] ^= 0xff
	if err := os.WriteFile(c.kept.Path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if seq, log := c.restore(t); seq != want || !strings.Contains(log, "copy of its snapshot not used") || !strings.Contains(log, fromLog(projections.FromStore)) {
		t.Fatalf("with a changed copy: restored at %d (want %d, from the store); log: %s", seq, want, log)
	}
	c.dropStored(t)
	if seq, log := c.restore(t); seq != 0 || !strings.Contains(log, "replaying the whole stream") {
		t.Fatalf("with a changed copy and none stored: restored at %d, want 0; log: %s", seq, log)
	}

	seed, _ := access.NewSeed()
	stranger, _ := access.NewSigner(seed)
	c.save(t, stranger, c.kept)
	c.dropStored(t)
	if seq, log := c.restore(t); seq != 0 || !strings.Contains(log, "copy of its snapshot not used") {
		t.Fatalf("with a stranger's copy: restored at %d, want 0; log: %s", seq, log)
	}

	if err := os.WriteFile(c.kept.Path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if seq, log := c.restore(t); seq != 0 || !strings.Contains(log, "not a snapshot copy") {
		t.Fatalf("with junk for a copy: restored at %d, want 0; log: %s", seq, log)
	}
}

// TestSnapshotCopyLeftoversAreRemoved: what a write cut short left beside
// the copy goes; the copy and other files stay.
func TestSnapshotCopyLeftoversAreRemoved(t *testing.T) {
	dir := t.TempDir()
	kept := &projections.SnapshotCopy{Path: filepath.Join(dir, "snapshot.copy")}
	for _, name := range []string{"snapshot.copy", ".snapshot.copy.123", ".snapshot.copy.456", "stream.seen", ".stream.seen.789"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := kept.RemoveLeftovers(); err != nil {
		t.Fatal(err)
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".stream.seen.789 snapshot.copy stream.seen" {
		t.Fatalf("left %v", names)
	}
}
