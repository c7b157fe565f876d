package node

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"tokenledger/internal/natstest"
)

// follower stands for a projections.Follower: it counts what it is told.
type follower struct {
	behind   atomic.Int32
	caughtUp chan struct{}
}

func (f *follower) Behind() { f.behind.Add(1) }

func (f *follower) CatchUp(ctx context.Context) error {
	f.caughtUp <- struct{}{}
	return nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestJoinedNodeCatchesUpAfterAReconnect: a joined node whose connection
// drops stops answering at once (Behind), and once reconnected catches up;
// its own Close is no outage.
func TestJoinedNodeCatchesUpAfterAReconnect(t *testing.T) {
	s := natstest.MustServer(t)
	nc, err := dial(s.ClientURL(), nil, joinOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	f := &follower{caughtUp: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	reconnected := watchConnection(nc, f, quiet)
	go func() { done <- catchUp(ctx, reconnected, f) }()

	id, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.caughtUp:
	case <-time.After(10 * time.Second):
		t.Fatal("no catch-up after the connection came back")
	}
	if n := f.behind.Load(); n != 1 {
		t.Errorf("told Behind %d times for one outage, want once", n)
	}
	nc.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("catchUp ended with %v", err)
	}
	if n := f.behind.Load(); n != 1 {
		t.Errorf("told Behind %d times after closing, want still once", n)
	}
}

// TestServiceConnFollowsTheNode: the service's connection is made to the
// server the node's own connection uses, never reconnects, and once that
// server is gone the next one goes where the node's connection moved.
func TestServiceConnFollowsTheNode(t *testing.T) {
	c := natstest.MustCluster(t)
	// Stopped before the test's directories are removed, which the cluster's
	// own cleanup comes after: a server still running writes into its store.
	t.Cleanup(func() {
		for i := range natstest.ClusterSize {
			c.Stop(i)
		}
	})
	nc, err := dial(c.URL(1), nil, joinOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	natstest.Eventually(t, "the node's connection to learn of the cluster", func() bool { return len(nc.Servers()) == natstest.ClusterSize })
	snc, closed, err := serviceConn(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snc.Close()
	if snc.ConnectedUrl() != nc.ConnectedUrl() {
		t.Fatalf("service on %s, node on %s: want the same server", snc.ConnectedUrl(), nc.ConnectedUrl())
	}
	gone := nc.ConnectedUrl()
	c.Stop(1)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the service's connection did not close with its server")
	}
	natstest.Eventually(t, "the node's connection on another server", func() bool { return nc.IsConnected() && nc.ConnectedUrl() != gone })
	again, _, err := serviceConn(nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.ConnectedUrl() != nc.ConnectedUrl() {
		t.Errorf("service on %s, node on %s: want the same server", again.ConnectedUrl(), nc.ConnectedUrl())
	}
}
