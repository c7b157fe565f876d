package projections_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// mustGuard runs a guard of n's stream and follower, looking often, until the
// test ends; it logs to the returned buffer and records into seen.
func mustGuard(t *testing.T, n *nodetest.Node, seen *projections.SeenFile) *nodetest.Buffer {
	t.Helper()
	var logged nodetest.Buffer
	g := &projections.Guard{Stream: n.Stream, Follower: n.Follower, Seen: seen, Interval: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logged, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &logged
}

func mustCreate(t *testing.T, n *nodetest.Node, account, name string) string {
	t.Helper()
	c, err := n.Ledger.Create(context.Background(), commands.Create{Account: account, Name: name, Actor: events.Actor{Kind: events.ActorOperator, Name: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Secret
}

// TestGuardHaltsTheNodeWhenTheStreamChanges: a stream deleted, or changed so
// that it could lose events, under a running node makes the node stop
// answering, with an ALERT that says what changed and what to do; the guard
// never makes a new stream in its place, does not take a new empty one for
// the history, and lets the node answer again once the stream is back as it
// was.
// storeFailed is JetStream's error code for "error creating store for stream".
const storeFailed = 10049

func TestGuardHaltsTheNodeWhenTheStreamChanges(t *testing.T) {
	ctx := context.Background()
	limited := jetstream.StreamConfig(events.DefaultConfig())
	limited.MaxAge = time.Hour
	for _, tt := range []struct {
		name   string
		change func(natsjs.JetStream) error
		alert  string // in the ALERT
		// then, what an operator does and whether the node answers again
		then     func(*testing.T, natsjs.JetStream) error
		thenSays string // the follower's reason while still halted; "" when it resumes
	}{
		{"deleted", func(js natsjs.JetStream) error { return js.DeleteStream(ctx, "TOKENS") },
			"stream TOKENS is missing, but this node has seen its history up to sequence 2: someone deleted it; restore the stream from a backup",
			func(t *testing.T, js natsjs.JetStream) error { // as a node that has seen nothing would
				// The server removes a deleted stream's files after it
				// answers; a create in that moment may fail (10049, "error
				// creating store"), and an operator would try again.
				var err error
				natstest.Eventually(t, "the stream created again", func() bool {
					_, err = js.CreateStream(ctx, jetstream.StreamConfig(events.DefaultConfig()))
					var apiErr *natsjs.APIError
					return err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != storeFailed
				})
				return err
			},
			"stream TOKENS ends at sequence 0, but this node has seen its history up to sequence 2"},
		{"given a MaxAge", func(js natsjs.JetStream) error { _, err := js.UpdateStream(ctx, limited); return err },
			"it has limits that discard events",
			func(_ *testing.T, js natsjs.JetStream) error {
				_, err := js.UpdateStream(ctx, jetstream.StreamConfig(events.DefaultConfig()))
				return err
			},
			""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.MustServer(t)
			n := nodetest.MustNode(t, srv, nodetest.Options{})
			secret := mustCreate(t, n, "bob", "a")
			mustCreate(t, n, "bob", "b")
			natstest.Eventually(t, "the node to apply both events", func() bool { return n.Table.Applied() == 2 })
			logged := mustGuard(t, n, nil)
			js, err := natsjs.New(natstest.MustConnect(t, srv))
			if err != nil {
				t.Fatal(err)
			}

			if err := tt.change(js); err != nil {
				t.Fatal(err)
			}
			natstest.Eventually(t, "the node to stop answering", func() bool { return !n.Follower.Ready() })
			natstest.Eventually(t, "an ALERT", func() bool { return strings.Contains(logged.String(), "level=ERROR msg=\"ALERT: ") })
			if log := logged.String(); !strings.Contains(log, tt.alert) {
				t.Fatalf("the log:\n%s\nwant an ALERT that says %q", log, tt.alert)
			}
			if reason := n.Follower.Halted(); !strings.Contains(reason, tt.alert) {
				t.Fatalf("halted for %q, want %q", reason, tt.alert)
			}
			if tt.name == "deleted" {
				if _, err := js.Stream(ctx, "TOKENS"); err != natsjs.ErrStreamNotFound {
					t.Fatalf("the stream after the guard saw it missing: %v, want still missing", err)
				}
			}

			if err := tt.then(t, js); err != nil {
				t.Fatal(err)
			}
			if tt.thenSays != "" {
				natstest.Eventually(t, "the guard to see the new stream", func() bool { return strings.Contains(n.Follower.Halted(), tt.thenSays) })
				if n.Follower.Ready() {
					t.Fatal("the node answers from a new empty stream")
				}
				return
			}
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := n.Follower.WaitReady(wctx); err != nil {
				t.Fatalf("the node does not answer again once the stream is back: %v (halted: %q)", err, n.Follower.Halted())
			}
			if n.Follower.Halted() != "" || !n.Table.Validate(secret, "", time.Now()).Valid {
				t.Fatalf("after resuming: halted %q, token valid %v", n.Follower.Halted(), n.Table.Validate(secret, "", time.Now()).Valid)
			}
			// It follows the stream again: another node's token arrives.
			other := nodetest.MustNode(t, srv, nodetest.Options{})
			theirs := mustCreate(t, other, "carol", "c")
			natstest.Eventually(t, "the resumed node to see a new token", func() bool { return n.Table.Validate(theirs, "", time.Now()).Valid })
		})
	}
}

// TestGuardRecordsWhatTheNodeHasSeen: the guard keeps the last sequence the
// node applied in its data directory, for the next start's check.
func TestGuardRecordsWhatTheNodeHasSeen(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	path := filepath.Join(t.TempDir(), "stream.seen")
	seen, err := projections.OpenSeen(path, "TOKENS")
	if err != nil || seen.Seq() != 0 {
		t.Fatalf("a new record: %d, %v", seen.Seq(), err)
	}
	mustGuard(t, n, seen)
	mustCreate(t, n, "bob", "a")
	mustCreate(t, n, "bob", "b")
	natstest.Eventually(t, "the record to reach 2", func() bool {
		s, err := projections.OpenSeen(path, "TOKENS")
		return err == nil && s.Seq() == 2
	})
	if b, _ := os.ReadFile(path); string(b) != "TOKENS 2\n" {
		t.Fatalf("the record: %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the record's mode: %v, want 0600", fi.Mode())
	}
	// A record of another stream, or none, has seen nothing of this one;
	// a torn one is refused rather than taken for none.
	for _, tt := range []struct {
		name, file string
		want       uint64
		fails      bool
	}{
		{"this stream", "TOKENS 7\n", 7, false},
		{"another stream", "OTHER 7\n", 0, false},
		{"torn", "TOKENS", 0, true},
	} {
		os.WriteFile(path, []byte(tt.file), 0o600)
		s, err := projections.OpenSeen(path, "TOKENS")
		if (err != nil) != tt.fails || (err == nil && s.Seq() != tt.want) {
			t.Errorf("%s: %v, %v; want %d, fails %v", tt.name, s, err, tt.want, tt.fails)
		}
	}
}

// TestHaltOverridesCatchingUp: while halted, nothing makes the follower
// ready; once resumed, it catches up and is.
func TestHaltOverridesCatchingUp(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	ctx := context.Background()
	n.Follower.Halt("test: the stream is wrong")
	if n.Follower.Ready() || n.Follower.Halted() != "test: the stream is wrong" {
		t.Fatalf("halted: ready %v, reason %q", n.Follower.Ready(), n.Follower.Halted())
	}
	select {
	case <-n.Follower.Lost():
	default:
		t.Fatal("Lost is not closed once halted")
	}
	if err := n.Follower.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Follower.Ready() {
		t.Fatal("ready after CatchUp while halted")
	}
	n.Follower.Resume()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := n.Follower.WaitReady(wctx); err != nil {
		t.Fatalf("not ready once resumed: %v", err)
	}
}

// TestGuardHaltsTheNodeWhileJetStreamCannotStore: a NATS server that stores
// nothing until an operator acts (its disk full, JetStream switched off) makes
// the node not ready, with the reason and an ERROR that says what to do; the
// node answers again at the guard's first look that finds JetStream storing.
// The server's view is what an embedded server says (jetstream.Stream.AskServer);
// cmd/tokenledger's TestDiskFull fills a real disk.
func TestGuardHaltsTheNodeWhileJetStreamCannotStore(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trouble error
		reason  string // the start of Halted, and in the ERROR
		remedy  string // in the ERROR
	}{
		{"disk full", errors.New("a write to stream TOKENS found the disk full: no space left on device"),
			"the NATS server has no space left for JetStream (a write to stream TOKENS found the disk full", "with the embedded server, restart this node"},
		{"JetStream off", natsjs.ErrJetStreamNotEnabled,
			"JetStream is disabled on the NATS server (", "reload (nats-server --signal reload) or restart it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.MustServer(t)
			n := nodetest.MustNode(t, srv, nodetest.Options{})
			var trouble atomic.Pointer[error]
			n.Stream.AskServer(func() error {
				if err := trouble.Load(); err != nil {
					return *err
				}
				return nil
			})
			secret := mustCreate(t, n, "bob", "a")
			logged := mustGuard(t, n, nil)

			trouble.Store(&tt.trouble)
			natstest.Eventually(t, "the node to stop answering", func() bool { return !n.Follower.Ready() })
			if reason := n.Follower.Halted(); !strings.HasPrefix(reason, tt.reason) {
				t.Fatalf("halted for %q, want %q", reason, tt.reason)
			}
			natstest.Eventually(t, "an ERROR", func() bool { return strings.Contains(logged.String(), "level=ERROR msg=\""+tt.reason) })
			if log := logged.String(); !strings.Contains(log, tt.remedy) || !strings.Contains(log, "not ready") {
				t.Fatalf("the log:\n%s\nwant an ERROR that says the node is not ready and %q", log, tt.remedy)
			}

			trouble.Store(nil)
			wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := n.Follower.WaitReady(wctx); err != nil {
				t.Fatalf("the node does not answer again once JetStream stores: %v (halted: %q)", err, n.Follower.Halted())
			}
			if !n.Table.Validate(secret, "", time.Now()).Valid {
				t.Fatal("a token is not valid after resuming")
			}
		})
	}
}
