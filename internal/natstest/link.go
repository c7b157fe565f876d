package natstest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Link is a TCP link between two servers that a test can cut and restore, as
// a WAN link between a region and the hub drops and comes back: a server
// dials the link's address and the link forwards to the target. Cut closes
// every connection through it and refuses new ones (each is accepted and
// closed at once, so a reconnecting server fails fast rather than waits on a
// timeout); Restore forwards again. The listener stays open across a cut, so
// the address a server was given never changes and no other process can take
// its port in between.
type Link struct {
	tb     testing.TB
	ln     net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{} // both ends of every forwarded connection
	wg     sync.WaitGroup        // the accept loop and every forwarding goroutine
}

// MustLink listens on a random loopback port and forwards what it accepts to
// target (host:port). Every goroutine it starts has ended when the test's
// cleanups have run.
func MustLink(tb testing.TB, target string) *Link {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("link to %s: %v", target, err)
	}
	l := &Link{tb: tb, ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	l.wg.Add(1)
	go l.accept()
	tb.Cleanup(l.close)
	return l
}

// Addr is the link's own address, host:port, for the server that dials it.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Cut closes every live connection through the link and refuses new ones
// until Restore. Cutting a cut link does nothing.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Restore forwards new connections again; a server reconnecting on its own
// schedule finds the link open.
func (l *Link) Restore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = false
}

// Live is how many connections the link forwards now, for a test that waits
// until a server has come through it (or has been cut off).
func (l *Link) Live() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns) / 2
}

func (l *Link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed by close; a loopback listener has no other failure worth retrying
		}
		l.mu.Lock()
		refuse := l.cut || l.closed
		if !refuse {
			l.wg.Add(1)
		}
		l.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		go l.forward(c)
	}
}

// forward dials the target for one accepted connection and copies both ways
// until either side ends or the link is cut; then both ends are closed.
func (l *Link) forward(in net.Conn) {
	defer l.wg.Done()
	out, err := net.Dial("tcp", l.target)
	if err != nil {
		in.Close()
		return
	}
	// A cut may have come while dialling: registering and checking happen
	// under one lock, so a connection is either closed by Cut or here.
	l.mu.Lock()
	if l.cut || l.closed {
		l.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	l.conns[in] = struct{}{}
	l.conns[out] = struct{}{}
	l.mu.Unlock()

	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); pipe(out, in) }()
	pipe(in, out)
	// One direction has ended: close both ends so the other ends too.
	in.Close()
	out.Close()
	<-done
	<-done
	l.mu.Lock()
	delete(l.conns, in)
	delete(l.conns, out)
	l.mu.Unlock()
}

// close stops accepting, closes every connection and waits for every
// goroutine the link started.
func (l *Link) close() {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		l.tb.Errorf("link to %s: %v", l.target, err)
	}
	l.wg.Wait()
}
