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
	// Users are the nkey users the server accepts, each with its
	// permissions (see package access). With no ConfigFile they are the only
	// way in: the server refuses anonymous connections.
	Users []*server.NkeyUser
	// NoSync trades durability for speed; only tests set it.
	NoSync bool
	// Anonymous lets any connection in with every right, for tests of
	// packages that are not about access; only tests set it.
	Anonymous bool
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
	} else if err := portFree(o.Listen); err != nil {
		return nil, err
	}
	opts := &server.Options{}
	if o.ConfigFile != "" {
		if opts, err = server.ProcessConfigFile(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("--nats-config %s: %w", o.ConfigFile, err)
		}
	}
	// Beyond this machine, clients' traffic crosses a network: that takes a
	// configuration of the operator's (users, TLS), not only our nkeys.
	if !isLoopback(host) && !hasAuth(opts) {
		return nil, fmt.Errorf("--listen %s reaches beyond this machine, and anyone who reaches NATS can read the stream and ask for commands: "+
			"give --nats-config a configuration with users, permissions and TLS (see deploy/), or listen on 127.0.0.1", o.Listen)
	}
	if o.ConfigFile == "" && len(o.Users) == 0 && !o.Anonymous {
		return nil, fmt.Errorf("embedded NATS: no users: every connection must authenticate")
	}
	opts.Nkeys = append(opts.Nkeys, o.Users...)
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

// portFree fails at once, with the reason, when another process listens on
// addr: the server itself would only log it and leave Start waiting.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--listen %s: %v (is another tokenledger serve or NATS server running? stop it, or give --listen another port)", addr, err)
	}
	return ln.Close()
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
