package natstest_test

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"tokenledger/internal/natstest"
)

// mustEcho is a TCP server that writes back each line it reads, closed when
// the test ends.
func mustEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func mustDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoes reports whether a line written to c comes back.
func echoes(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func TestLinkCutAndRestore(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("link", func(t *testing.T) {
		link := natstest.MustLink(t, mustEcho(t))

		c := mustDial(t, link.Addr())
		if !echoes(c) {
			t.Fatal("no echo through an open link")
		}
		natstest.Eventually(t, "the link counting one connection", func() bool { return link.Live() == 1 })

		link.Cut()
		if echoes(c) {
			t.Fatal("a connection through the link still echoes after the cut")
		}
		if echoes(mustDial(t, link.Addr())) {
			t.Fatal("a new connection through a cut link echoes")
		}
		natstest.Eventually(t, "the cut link counting no connection", func() bool { return link.Live() == 0 })

		link.Restore()
		if !echoes(mustDial(t, link.Addr())) {
			t.Fatal("no echo through the restored link")
		}
	})
	// Every goroutine of the link, the echo server and the connections has
	// ended once the subtest's cleanups have run.
	natstest.Eventually(t, "the goroutines back to where they were", func() bool {
		return runtime.NumGoroutine() <= before
	})
}
