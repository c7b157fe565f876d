package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"tokenledger/internal/natstest"
)

// table stands for a follower: ready or lost, as a test says.
type table struct {
	mu   sync.Mutex
	up   chan struct{} // closed while ready
	down chan struct{} // closed while not ready
}

func newTable() *table {
	t := &table{up: make(chan struct{}), down: make(chan struct{})}
	close(t.down)
	return t
}

func (t *table) ready() {
	t.mu.Lock()
	defer t.mu.Unlock()
	close(t.up)
	t.down = make(chan struct{})
}

func (t *table) lost() {
	t.mu.Lock()
	defer t.mu.Unlock()
	close(t.down)
	t.up = make(chan struct{})
}

func (t *table) WaitReady(ctx context.Context) error {
	t.mu.Lock()
	up := t.up
	t.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *table) Lost() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.down
}

// echoService answers on tokens.validate, as the service would.
type echoService struct{ sub *nats.Subscription }

func (e echoService) Stop() error { return e.sub.Unsubscribe() }

func startEcho(nc *nats.Conn) (stopper, error) {
	sub, err := nc.QueueSubscribe("tokens.validate", "q", func(m *nats.Msg) { m.Respond([]byte("ok")) })
	if err != nil {
		return nil, err
	}
	return echoService{sub}, nc.Flush()
}

// loopRun is a serviceLoop running on s with a table a test drives.
type loopRun struct {
	table   *table
	served  atomic.Int32
	conns   chan *nats.Conn // each connection the loop made
	failing atomic.Int32    // connections to refuse before making one
	drops   atomic.Int32    // starts whose connection the server drops first
	cancel  func()
	done    chan error
}

func mustLoop(t *testing.T, s *server.Server) *loopRun {
	t.Helper()
	r := &loopRun{table: newTable(), conns: make(chan *nats.Conn, 16), done: make(chan error, 1)}
	loop := &serviceLoop{
		ready: r.table,
		connect: func() (*nats.Conn, <-chan struct{}, error) {
			if r.failing.Add(-1) >= 0 {
				return nil, nil, errors.New("refused")
			}
			closed := make(chan struct{})
			nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
			if err == nil {
				r.conns <- nc
			}
			return nc, closed, err
		},
		start: func(nc *nats.Conn) (stopper, error) {
			if r.drops.Add(-1) >= 0 {
				dropConn(t, s, nc)
			}
			return startEcho(nc)
		},
		serving: func() { r.served.Add(1) },
		retry:   10 * time.Millisecond,
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- loop.run(ctx); close(r.done) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// dropConn has the server drop nc, as it gives up a stalled connection, and
// waits until nc knows.
func dropConn(t *testing.T, s *server.Server, nc *nats.Conn) {
	id, err := nc.GetClientID()
	if err == nil {
		err = s.DisconnectClientByID(id)
	}
	if err != nil {
		t.Error(err)
		return
	}
	natstest.Eventually(t, "the dropped connection closing", nc.IsClosed)
}

// stop ends the loop and checks that it ended well.
func (r *loopRun) stop(t *testing.T) {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("the loop ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not end")
	}
}

// answered says whether a request to the service is answered: not when it
// finds no responders, nor when it is lost as a service stops.
func answered(t *testing.T, client *nats.Conn) bool {
	t.Helper()
	_, err := client.Request("tokens.validate", nil, time.Second)
	return err == nil
}

// TestServiceAnswersOnlyWhileTheTableIsReady: a client is answered while
// the table may be answered from, and finds no responders before, while it
// is lost and after the node stopped; the node says it is serving once.
func TestServiceAnswersOnlyWhileTheTableIsReady(t *testing.T) {
	s := natstest.MustServer(t)
	client := natstest.MustConnect(t, s)
	r := mustLoop(t, s)
	if answered(t, client) {
		t.Fatal("answered before the table was ready")
	}
	r.table.ready()
	natstest.Eventually(t, "an answer once ready", func() bool { return answered(t, client) })
	first := <-r.conns
	r.table.lost()
	natstest.Eventually(t, "no answer once lost", func() bool { return !answered(t, client) })
	if !first.IsClosed() {
		t.Error("the service's connection is open after the table was lost")
	}
	r.table.ready()
	natstest.Eventually(t, "an answer once ready again", func() bool { return answered(t, client) })
	if n := r.served.Load(); n != 1 {
		t.Errorf("said it was serving %d times, want once", n)
	}
	r.stop(t)
	if answered(t, client) {
		t.Error("answered after the loop stopped")
	}
	if second := <-r.conns; !second.IsClosed() {
		t.Error("the service's connection is open after the loop stopped")
	}
}

// TestServiceStartsAgainOnANewConnection: the server drops the service's
// connection (as a stall gives it up); the service answers again on a new
// one while the table stays ready.
func TestServiceStartsAgainOnANewConnection(t *testing.T) {
	s := natstest.MustServer(t)
	client := natstest.MustConnect(t, s)
	r := mustLoop(t, s)
	r.table.ready()
	natstest.Eventually(t, "an answer", func() bool { return answered(t, client) })
	first := <-r.conns
	dropConn(t, s, first)
	var second *nats.Conn
	select {
	case second = <-r.conns:
	case <-time.After(10 * time.Second):
		t.Fatal("no new connection after the first was dropped")
	}
	natstest.Eventually(t, "an answer on the new connection", func() bool { return answered(t, client) })
	if !first.IsClosed() || second.IsClosed() {
		t.Errorf("first closed %v, second closed %v; want the first only", first.IsClosed(), second.IsClosed())
	}
}

// TestServiceConnectsAgainAfterAFailure: a service that could not connect
// at first answers once it can, and the node says it is serving then.
func TestServiceConnectsAgainAfterAFailure(t *testing.T) {
	s := natstest.MustServer(t)
	client := natstest.MustConnect(t, s)
	r := mustLoop(t, s)
	r.failing.Store(3)
	r.table.ready()
	natstest.Eventually(t, "an answer", func() bool { return answered(t, client) })
	if n := r.served.Load(); n != 1 {
		t.Errorf("said it was serving %d times, want once", n)
	}
}

// TestServiceStartsAgainAfterItsConnectionFailedWhileStarting: the server
// drops the service's connection as the service subscribes (a server paused
// at that moment does so); the loop does not end the node but starts the
// service again on a new connection.
func TestServiceStartsAgainAfterItsConnectionFailedWhileStarting(t *testing.T) {
	s := natstest.MustServer(t)
	client := natstest.MustConnect(t, s)
	r := mustLoop(t, s)
	r.drops.Store(2)
	r.table.ready()
	natstest.Eventually(t, "an answer", func() bool { return answered(t, client) })
	if n := len(r.conns); n != 3 {
		t.Errorf("made %d connections, want 3: two dropped while starting and the one answering", n)
	}
	select {
	case err := <-r.done:
		t.Fatalf("the loop ended with %v", err)
	default:
	}
	if n := r.served.Load(); n != 1 {
		t.Errorf("said it was serving %d times, want once", n)
	}
}
