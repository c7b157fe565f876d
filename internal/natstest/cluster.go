package natstest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterSize is the number of servers MustCluster starts: the smallest
// JetStream cluster that keeps an R3 stream writable after losing a server.
const ClusterSize = 3

// Cluster is a real three-server JetStream cluster in this process, on
// loopback ports, each server with its own store. Servers can be stopped and
// restarted on the same ports and store, as an operator would.
type Cluster struct {
	tb      testing.TB
	name    string
	base    func() (*server.Options, error) // each server's options before the cluster's own; nil: none
	stores  string                          // the servers' stores live below it
	mu      sync.Mutex
	opts    []*server.Options
	servers []*server.Server // nil while stopped
}

// MustCluster starts a three-server JetStream cluster and waits until it has
// a meta leader that sees every server, so that an R3 stream can be placed.
// It is shut down when the test ends.
func MustCluster(tb testing.TB) *Cluster {
	tb.Helper()
	return MustClusterFrom(tb, nil)
}

// MustClusterFrom is MustCluster with each server's options taken first from
// base (users, accounts, permissions: a real configuration file, say); the
// cluster then sets names, loopback ports, routes (with base's route
// credentials) and stores of its own.
func MustClusterFrom(tb testing.TB, base func() (*server.Options, error)) *Cluster {
	tb.Helper()
	// The stores' directory is made before the shutdown is registered, so
	// that it is removed after the servers stop (cleanups run last first):
	// a running server may still write into its store.
	c := &Cluster{tb: tb, name: "tokenledger-test", base: base, stores: tb.TempDir()}
	tb.Cleanup(c.shutdown)
	// Routes need each server's cluster port before any server starts, so the
	// ports are picked up front. Another process may take a picked port in
	// between; then the whole cluster is started again on fresh ports.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.start(); err == nil {
			break
		}
		c.shutdown()
	}
	if err != nil {
		tb.Fatalf("cluster: %v", err)
	}
	Eventually(tb, "a JetStream meta leader that sees all three servers", func() bool {
		for _, s := range c.Servers() {
			if s != nil && s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == ClusterSize {
				return true
			}
		}
		return false
	})
	return c
}

func (c *Cluster) start() error {
	ports, err := freePorts(ClusterSize)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.opts, c.servers = make([]*server.Options, ClusterSize), make([]*server.Server, ClusterSize)
	c.mu.Unlock()
	for i := range ClusterSize {
		o := &server.Options{}
		if c.base != nil {
			if o, err = c.base(); err != nil {
				return err
			}
		}
		auth := ""
		if o.Cluster.Username != "" {
			auth = url.UserPassword(o.Cluster.Username, o.Cluster.Password).String() + "@"
		}
		routes := make([]string, len(ports))
		for i, p := range ports {
			routes[i] = fmt.Sprintf("nats-route://%s127.0.0.1:%d", auth, p)
		}
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.Host, o.Port = "127.0.0.1", server.RANDOM_PORT
		o.HTTPPort = 0
		store, err := os.MkdirTemp(c.stores, o.ServerName+"-")
		if err != nil {
			return err
		}
		o.JetStream, o.StoreDir = true, store
		o.NoSigs, o.NoLog = true, true
		o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = c.name, "127.0.0.1", ports[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.mu.Lock()
		c.opts[i] = o
		c.mu.Unlock()
		if err := c.run(i); err != nil {
			return err
		}
	}
	return nil
}

// run starts server i from its options. Once started, its client port is
// kept, so a restarted server is found where clients last saw it.
func (c *Cluster) run(i int) error {
	c.mu.Lock()
	o := c.opts[i].Clone()
	c.mu.Unlock()
	s, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("server %s: %w", o.ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("server %s did not start (cluster port %d taken?)", o.ServerName, o.Cluster.Port)
	}
	if s.ClusterAddr() == nil {
		s.Shutdown()
		return fmt.Errorf("server %s could not listen on cluster port %d", o.ServerName, o.Cluster.Port)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts[i].Port = s.Addr().(*net.TCPAddr).Port
	c.servers[i] = s
	return nil
}

// Servers returns the servers, nil where one is stopped.
func (c *Cluster) Servers() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*server.Server(nil), c.servers...)
}

// URL is server i's client URL.
func (c *Cluster) URL(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return (&url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", c.opts[i].Port)}).String()
}

// URLs is every server's client URL, comma separated, as `--nats` takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, ClusterSize)
	for i := range urls {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Index returns the position of the server called name ("n1"…), or -1.
func (c *Cluster) Index(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// Running says whether server i is up (not stopped).
func (c *Cluster) Running(i int) bool { return c.Servers()[i] != nil }

// Stop shuts server i down, as a crash or a reboot would take it away.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Restart starts a stopped server i again on its ports and store.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	if err := c.run(i); err != nil {
		c.tb.Fatal(err)
	}
}

func (c *Cluster) shutdown() {
	for i := range c.Servers() {
		c.Stop(i)
	}
}

// freePorts finds n free loopback ports by listening on port 0 and closing.
// The ports are free now, not reserved: callers retry when one is taken.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreeAddr returns a loopback address with a port that is free now, for a
// program that must be told its address before it starts.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ports, err := freePorts(1)
	if err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}
