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
	// ConfigFile is a nats-server configuration file for what the flags do
	// not cover: users and their permissions, TLS, accounts.
	ConfigFile string
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
	opts := &server.Options{}
	if o.ConfigFile != "" {
		if opts, err = server.ProcessConfigFile(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("--nats-config %s: %w", o.ConfigFile, err)
		}
	}
	if !isLoopback(host) && !hasAuth(opts) {
		return nil, fmt.Errorf("--listen %s reaches beyond this machine, and anyone who reaches NATS can read the stream and ask for commands: "+
			"give --nats-config a configuration with users and permissions (see deploy/), or listen on 127.0.0.1", o.Listen)
	}
	opts.ServerName = "tokenledger"
	opts.Host, opts.Port = host, port
	opts.JetStream, opts.StoreDir = true, o.DataDir
	opts.SyncAlways = !o.NoSync
	opts.NoSigs = true
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 1 << 20
	}
	s, err := server.NewServer(opts)
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

// isLoopback says whether host is reachable from this machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hasAuth says whether the configuration makes clients authenticate.
func hasAuth(o *server.Options) bool {
	return len(o.Users) > 0 || len(o.Nkeys) > 0 || o.Username != "" || o.Authorization != "" ||
		len(o.TrustedOperators) > 0 || len(o.TrustedKeys) > 0
}
