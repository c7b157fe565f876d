// Package natstest starts real NATS servers for tests: one embedded server
// with JetStream on a random port in a temporary directory, stopped when the
// test ends. No test in tokenledger mocks NATS.
package natstest

import (
	"context"
	"github.com/nats-io/nats.go/jetstream"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"tokenledger/embedded"
)

// MustServer starts an embedded JetStream server on a random loopback port.
func MustServer(tb testing.TB) *server.Server {
	tb.Helper()
	s, err := embedded.Start(embedded.Options{DataDir: tb.TempDir(), Listen: "127.0.0.1:0", NoSync: true, Anonymous: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// MustConnect connects a client to s and closes it when the test ends.
func MustConnect(tb testing.TB, s *server.Server) *nats.Conn {
	tb.Helper()
	// A private inbox prefix, as every role of an authenticated deployment
	// has: the service answers commands only there (see package access).
	nc, err := nats.Connect(s.ClientURL(), nats.Timeout(10*time.Second), nats.CustomInboxPrefix("_INBOX_test"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Eventually fails the test unless cond holds within a generous deadline,
// checking it often: tests wait on conditions, never on fixed sleeps.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyWithin(tb, 20*time.Second, what, cond)
}

// EventuallyWithin is Eventually with its own deadline, for a condition that
// waits on a slow recovery by design, such as a JetStream cluster's after
// losing a server: a new stream leader, and followers' consumers recreated
// with the client library's own backoff and ten-second requests.
func EventuallyWithin(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// MustStreamInfo is the stream's configuration and state as its server
// holds them now, asked over nc.
func MustStreamInfo(tb testing.TB, nc *nats.Conn, stream string) *jetstream.StreamInfo {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s: %v", stream, err)
	}
	return info
}
