// Package embedded runs nats-server in-process with JetStream: the default
// that lets `tokenledger serve` work with nothing else installed.
package embedded

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
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

	// Domain is the server's JetStream domain: a hub's (hub), or a
	// region's (the region's name). Empty: none, as before regions.
	Domain string
	// LeafListen, host:port, takes leaf node connections from regional
	// servers, who authenticate as Users do (as the region role, see
	// package access). Empty: no leafnode listener.
	LeafListen string
	// Hub makes the server a leaf node of these URLs (nats-leaf://...),
	// connecting with HubCreds: a file holding an nkey seed or JWT
	// credentials. Empty: not a leaf node.
	Hub      []string
	HubCreds string
}

// leafReconnect is how soon a regional server dials the hub again after
// the link drops, and so how long after the link returns the region starts
// to catch up: a revoke made during an outage is refused in the region
// within about this (the mirror takes the events it missed at once, see
// node.Region). nats-server's default, one second, made that a second and
// a bit (TestRegionValidatesThroughAnOutage logs it); a dial four times a
// second to a hub that is away costs nothing worth saving.
const leafReconnect = 250 * time.Millisecond

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
	if err := leafOptions(opts, o); err != nil {
		return nil, err
	}
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

// leafOptions sets the JetStream domain and the leaf node links of o. A
// server in a domain is named after it, since a hub and its regions, which
// meet over leaf connections, must not share a server name.
func leafOptions(opts *server.Options, o Options) error {
	if o.Domain != "" {
		opts.JetStreamDomain = o.Domain
		opts.ServerName = "tokenledger-" + o.Domain
	}
	if o.LeafListen != "" {
		host, portText, err := net.SplitHostPort(o.LeafListen)
		port, perr := strconv.Atoi(portText)
		if err != nil || perr != nil || port < 0 || port > 65535 {
			return fmt.Errorf("--leaf-listen %q: want host:port", o.LeafListen)
		}
		if port == 0 { // a free one now, so that LeafURL can say which
			if port, err = freePort(host); err != nil {
				return fmt.Errorf("--leaf-listen %s: %v", o.LeafListen, err)
			}
		}
		if !isLoopback(host) && !hasAuth(opts) {
			return fmt.Errorf("--leaf-listen %s reaches beyond this machine: give --nats-config a configuration with TLS for the leaf connections (see deploy/), or listen on 127.0.0.1", o.LeafListen)
		}
		opts.LeafNode.Host, opts.LeafNode.Port = host, port
		// Regions dial the URLs they are given (--hub), which may be a
		// load balancer's or a tunnel's: the hub does not hand them its
		// own addresses to try instead.
		opts.LeafNode.NoAdvertise = true
	}
	if len(o.Hub) == 0 {
		return nil
	}
	remote := &server.RemoteLeafOpts{}
	for _, u := range o.Hub {
		parsed, err := url.Parse(u)
		if err != nil || parsed.Host == "" {
			return fmt.Errorf("--hub %q: want a leafnode URL such as nats-leaf://hub.example.com:7422", u)
		}
		remote.URLs = append(remote.URLs, parsed)
	}
	if o.HubCreds != "" {
		b, err := os.ReadFile(o.HubCreds)
		if err != nil {
			return fmt.Errorf("--hub-creds: %v", err)
		}
		defer clear(b)
		if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
			remote.Credentials = o.HubCreds // a .creds file: the server reads it itself
		} else {
			kp, err := nkeys.ParseDecoratedUserNKey(b) // a seed file, ours (with its comments) or any other
			if err != nil {
				return fmt.Errorf("--hub-creds %s: neither an nkey user seed nor a .creds file: %v", o.HubCreds, err)
			}
			seed, err := kp.Seed()
			if err == nil {
				remote.Nkey = string(seed) // a copy: Wipe clears the key's own
			}
			kp.Wipe()
			if err != nil {
				return fmt.Errorf("--hub-creds %s: %v", o.HubCreds, err)
			}
		}
	}
	opts.LeafNode.Remotes = append(opts.LeafNode.Remotes, remote)
	opts.LeafNode.ReconnectInterval = leafReconnect
	return nil
}

// freePort is a port free on host now.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// FreeAddr is addr (host:port) with port 0 replaced by a port free on
// host now, so that a caller can say where a listener it asks for with port
// 0 listens (the server does not tell of its leafnode listener).
func FreeAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, nil // Start says what is wrong with it
	}
	p, err := freePort(host)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// HubLinked says whether s, a regional server, has its leaf connection to
// the hub up now.
func HubLinked(s *server.Server) bool { return s.NumLeafNodes() > 0 }

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
