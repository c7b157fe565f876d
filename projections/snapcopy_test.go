package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
	srv   *server.Server
	n     *nodetest.Node
	js    natsjs.JetStream
	store *jetstream.Snapshots
	kept  *projections.SnapshotCopy
}

func mustCopyCase(t *testing.T) *copyCase {
	t.Helper()
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	c := &copyCase{srv: srv, n: n, kept: &projections.SnapshotCopy{Path: filepath.Join(t.TempDir(), "snapshot.copy")}}
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
// the log says the table came. It restores twice, reading the copy itself
// and as a node does, with the copy prefetched, and fails unless both
// restored the same and said the same of the copy.
func (c *copyCase) restore(t *testing.T) (uint64, string) {
	t.Helper()
	var seqs [2]uint64
	var logs [2]string
	for i, prefetch := range []bool{false, true} {
		if prefetch {
			c.kept.Prefetch(c.n.Trust, projections.DefaultWarn)
		}
		var log bytes.Buffer
		restored := projections.Restore(context.Background(), c.store, c.kept, c.n.Stream, c.n.Trust, projections.DefaultWarn,
			slog.New(slog.NewTextHandler(&log, nil)))
		seqs[i], logs[i] = restored.Applied(), log.String()
	}
	for _, said := range []string{fromLog(projections.FromCopy), fromLog(projections.FromStore), "copy of its snapshot not used", "replaying the whole stream"} {
		if seqs[0] != seqs[1] || strings.Contains(logs[0], said) != strings.Contains(logs[1], said) {
			t.Fatalf("read then, at %d: %s\nprefetched, at %d: %s", seqs[0], logs[0], seqs[1], logs[1])
		}
	}
	return seqs[0], logs[0]
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

// TestSnapshotCopyPrefetchStopped: a prefetch that Restore never takes (the
// node failed before it) ends at Stop, its file closed, even while its read
// of the copy waits (here on a pipe that a writer holds open); Restore ends
// one it does not use.
func TestSnapshotCopyPrefetchStopped(t *testing.T) {
	c := mustCopyCase(t)
	c.save(t, c.n.Signer, c.kept)
	raw, err := os.ReadFile(c.kept.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(c.kept.Path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(c.kept.Path, 0o600); err != nil {
		t.Skip("no named pipes:", err)
	}
	body := bytes.IndexByte(raw, '\n') + 1
	go func() { // the first line and half the body, and no end
		w, err := os.OpenFile(c.kept.Path, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		t.Cleanup(func() { w.Close() })
		w.Write(raw[:body+(len(raw)-body)/2])
	}()
	if !c.kept.Prefetch(c.n.Trust, projections.DefaultWarn) || !holdsOpen(t, c.kept.Path) {
		t.Fatal("the copy was not prefetched")
	}
	stopped := make(chan struct{})
	go func() { c.kept.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatal("Stop did not end a reading that waits for more of the copy")
	}
	if holdsOpen(t, c.kept.Path) {
		t.Fatal("the copy is still open after Stop")
	}
	c.kept.Stop() // again: nothing to stop

	// Restore ends a prefetch it returns without taking: here its store
	// cannot say what snapshot it holds.
	os.Remove(c.kept.Path)
	c.save(t, c.n.Signer, c.kept)
	nc := natstest.MustConnect(t, c.srv)
	js, _ := natsjs.New(nc)
	gone, err := jetstream.OpenSnapshots(context.Background(), js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if !c.kept.Prefetch(c.n.Trust, projections.DefaultWarn) {
		t.Fatal("the copy was not prefetched")
	}
	if seq := projections.Restore(context.Background(), gone, c.kept, c.n.Stream, c.n.Trust, projections.DefaultWarn, quiet).Applied(); seq != 0 {
		t.Fatalf("restored at %d from a store that cannot answer", seq)
	}
	if holdsOpen(t, c.kept.Path) {
		t.Fatal("the copy is still open after a Restore that did not use it")
	}
}

// failingSource cannot say what any message of the stream is.
type failingSource struct{}

func (failingSource) DigestAt(context.Context, uint64) (events.Hash, error) {
	return events.Hash{}, errors.New("no stream")
}

// holdsOpen says whether this process has path open for reading (as the
// node does; the test's writer of a pipe does not count).
func holdsOpen(t *testing.T, path string) bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || target != path {
			continue
		}
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		var flags int
		for _, line := range strings.Split(string(info), "\n") {
			if f, ok := strings.CutPrefix(line, "flags:"); ok {
				fmt.Sscanf(strings.TrimSpace(f), "%o", &flags)
			}
		}
		if err == nil && flags&syscall.O_ACCMODE == syscall.O_RDONLY {
			return true
		}
	}
	return false
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
