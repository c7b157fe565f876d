// Package embedded runs nats-server in-process with JetStream: the default
// that lets `tokenledger serve` work with nothing else installed.
package embedded

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server. Every write reaches the disk before
// JetStream acknowledges it: a revoke that a crash forgets is a security hole.
type Options struct {
	DataDir string // JetStream's file store
	Listen  string // client address, host:port; port 0 picks a free one
	// NoSync trades durability for speed; only tests set it.
	NoSync bool
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: want host:port", o.Listen)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--listen %q: bad port", o.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "tokenledger",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.DataDir,
		SyncAlways: !o.NoSync,
		NoSigs:     true,
		MaxPayload: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start on %s (is the port in use?)", o.Listen)
	}
	return s, nil
}
