package natstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Processes is a three-server JetStream cluster of nats-server processes on
// loopback ports, for the faults a server in the test's own process cannot
// have: paused (SIGSTOP), as a hung machine, a stalled disk or a frozen VM
// leave it, with its sockets open and nothing answered, or killed outright.
// The servers are the nats-server of go.mod, built once per test binary.
type Processes struct {
	tb      testing.TB
	from    string // a deployment's configuration file the servers run; empty: the test's own
	mu      sync.Mutex
	servers []*serverProcess
}

type serverProcess struct {
	name                     string
	conf                     string
	args                     []string // beyond -c conf
	env                      []string // beyond this process's environment
	port, clusterPort, httpP int
	leafPort                 int // 0: no leafnode listener
	cmd                      *exec.Cmd
	out                      *logBuffer    // what it logged
	done                     chan struct{} // closed once it has exited
	paused                   bool
}

// MustProcesses starts the three servers and waits until JetStream has a
// meta leader that sees all three, so that an R3 stream can be placed. Every
// server is resumed and killed when the test ends.
func MustProcesses(tb testing.TB) *Processes {
	tb.Helper()
	return mustProcesses(tb, "")
}

// MustProcessesFrom is MustProcesses with the servers running a deployment's
// own configuration file, conf, as deploy/README.md runs it on three
// machines: its users, permissions, accounts, JetStream domain and leafnode
// listener are the deployment's. The environment the file names (server
// name aside, which each server gets its own of as NATS_SERVER_NAME) must
// be set before the call, with tb.Setenv. Only the addresses change, all to
// loopback and free ports: the client, cluster and monitoring ports by
// nats-server's flags, the leafnode listener in a copy of the file, and the
// routes name the three test servers with the file's route credentials.
func MustProcessesFrom(tb testing.TB, conf string) *Processes {
	tb.Helper()
	return mustProcesses(tb, conf)
}

func mustProcesses(tb testing.TB, from string) *Processes {
	tb.Helper()
	bin := natsServerBinary(tb)
	dir := tb.TempDir() // removed after the servers are killed: cleanups run last first
	c := &Processes{tb: tb, from: from}
	tb.Cleanup(c.shutdown)
	// Routes need every cluster port before any server starts, so ports are
	// picked up front; another process may take one in between, and then
	// the cluster is started again on fresh ports.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.start(bin, filepath.Join(dir, fmt.Sprint(attempt))); err == nil {
			break
		}
		c.shutdown()
	}
	if err != nil {
		tb.Fatalf("nats-server processes: %v", err)
	}
	EventuallyWithin(tb, time.Minute, "a JetStream meta leader that sees all three servers", c.metaReady)
	tb.Cleanup(func() {
		if tb.Failed() {
			for _, s := range c.all() {
				tb.Logf("nats-server %s log, the last 40 lines:\n%s", s.name, lastLines(s.out.String(), 40))
			}
		}
	})
	return c
}

func (c *Processes) start(bin, dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if c.from != "" {
		return c.startFrom(bin, dir)
	}
	ports, err := freePorts(3 * ClusterSize)
	if err != nil {
		return err
	}
	routes := make([]string, ClusterSize)
	for i := range ClusterSize {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+1])
	}
	servers := make([]*serverProcess, ClusterSize)
	for i := range ClusterSize {
		s := &serverProcess{name: fmt.Sprintf("n%d", i+1), port: ports[3*i], clusterPort: ports[3*i+1], httpP: ports[3*i+2],
			out: &logBuffer{}}
		s.conf = filepath.Join(dir, s.name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: tokenledger-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, s.name, s.port, s.httpP, filepath.Join(dir, s.name), s.clusterPort, strings.Join(routes, ", "))
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			return err
		}
		servers[i] = s
	}
	return c.run(bin, servers)
}

// run starts servers and waits until each listens.
func (c *Processes) run(bin string, servers []*serverProcess) error {
	c.mu.Lock()
	c.servers = servers
	c.mu.Unlock()
	for _, s := range servers {
		if err := s.run(bin); err != nil {
			return err
		}
	}
	for _, s := range servers {
		if err := s.listening(); err != nil {
			return err
		}
	}
	return nil
}

// startFrom starts the servers from the deployment's file c.from.
func (c *Processes) startFrom(bin, dir string) error {
	o, err := server.ProcessConfigFile(c.from)
	if err != nil {
		return fmt.Errorf("%s: %w", c.from, err)
	}
	text, err := os.ReadFile(c.from)
	if err != nil {
		return err
	}
	ports, err := freePorts(4 * ClusterSize)
	if err != nil {
		return err
	}
	auth := ""
	if o.Cluster.Username != "" {
		auth = url.UserPassword(o.Cluster.Username, o.Cluster.Password).String() + "@"
	}
	routes := make([]string, ClusterSize)
	for i := range ClusterSize {
		routes[i] = fmt.Sprintf("nats-route://%s127.0.0.1:%d", auth, ports[4*i+1])
	}
	servers := make([]*serverProcess, ClusterSize)
	for i := range ClusterSize {
		s := &serverProcess{name: fmt.Sprintf("n%d", i+1), port: ports[4*i], clusterPort: ports[4*i+1], httpP: ports[4*i+2],
			out: &logBuffer{}}
		conf := string(text)
		if o.HTTPPort != 0 {
			if conf, err = moveAddr(conf, c.from, "monitoring", o.HTTPHost, o.HTTPPort, s.httpP); err != nil {
				return err
			}
		}
		if o.LeafNode.Port != 0 {
			s.leafPort = ports[4*i+3]
			if conf, err = moveAddr(conf, c.from, "leafnode", o.LeafNode.Host, o.LeafNode.Port, s.leafPort); err != nil {
				return err
			}
		}
		// nats-server refuses -sd beside a store_dir of the file's.
		store := filepath.Join(dir, s.name)
		if o.StoreDir != "" {
			if n := strings.Count(conf, o.StoreDir); n != 1 {
				return fmt.Errorf("%s: the store_dir %s appears %d times, want once", c.from, o.StoreDir, n)
			}
			conf = strings.Replace(conf, o.StoreDir, store, 1)
		}
		s.conf = filepath.Join(dir, s.name+".conf")
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			return err
		}
		s.args = []string{"-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-m", strconv.Itoa(s.httpP),
			"--cluster", fmt.Sprintf("nats://%s127.0.0.1:%d", auth, s.clusterPort), "--routes", strings.Join(routes, ",")}
		if o.StoreDir == "" {
			s.args = append(s.args, "-sd", store)
		}
		s.env = []string{"NATS_SERVER_NAME=" + s.name}
		servers[i] = s
	}
	return c.run(bin, servers)
}

// moveAddr is conf with the listener address host:port, which must appear in
// it once as written, moved to loopback port to.
func moveAddr(conf, file, what, host string, port, to int) (string, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if n := strings.Count(conf, addr); n != 1 {
		return "", fmt.Errorf("%s: the %s address %s appears %d times, want once", file, what, addr, n)
	}
	return strings.Replace(conf, addr, net.JoinHostPort("127.0.0.1", strconv.Itoa(to)), 1), nil
}

// LeafAddr is server i's leafnode listener, host:port, where the file
// configures one.
func (c *Processes) LeafAddr(i int) string {
	c.tb.Helper()
	s := c.server(i)
	if s.leafPort == 0 {
		c.tb.Fatalf("nats-server %s has no leafnode listener", s.name)
	}
	return fmt.Sprintf("127.0.0.1:%d", s.leafPort)
}

func (s *serverProcess) run(bin string) error {
	s.cmd = exec.Command(bin, append([]string{"-c", s.conf}, s.args...)...)
	if len(s.env) > 0 {
		s.cmd.Env = append(os.Environ(), s.env...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.done = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	return nil
}

// listening waits until the server answers on its monitoring port, or says
// why it could not start (a port taken).
func (s *serverProcess) listening() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("nats-server %s exited at start:\n%s", s.name, s.out)
		default:
		}
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", s.httpP)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server %s did not listen within 30 s:\n%s", s.name, s.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metaReady says whether some server sees a meta leader and the other two
// as current peers.
func (c *Processes) metaReady() bool {
	for _, s := range c.all() {
		if s.paused || exited(s) {
			continue
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", s.httpP))
		if err != nil {
			continue
		}
		var jsz struct {
			Meta *struct {
				Leader   string `json:"leader"`
				Replicas []struct {
					Current bool `json:"current"`
				} `json:"replicas"`
			} `json:"meta_cluster"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil || jsz.Meta == nil || jsz.Meta.Leader == "" || len(jsz.Meta.Replicas) != ClusterSize-1 {
			continue
		}
		current := true
		for _, r := range jsz.Meta.Replicas {
			current = current && r.Current
		}
		if current {
			return true
		}
	}
	return false
}

func exited(s *serverProcess) bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (c *Processes) all() []*serverProcess {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*serverProcess(nil), c.servers...)
}

func (c *Processes) server(i int) *serverProcess {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// URL is server i's client URL.
func (c *Processes) URL(i int) string {
	return (&url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", c.server(i).port)}).String()
}

// URLs is every server's client URL, comma separated, as `--nats` takes them.
func (c *Processes) URLs() string {
	urls := make([]string, ClusterSize)
	for i := range urls {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Index returns the position of the server called name ("n1"…), or -1.
func (c *Processes) Index(name string) int {
	for i, s := range c.all() {
		if s.name == name {
			return i
		}
	}
	return -1
}

// Running says whether server i is up: neither killed nor paused.
func (c *Processes) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[i]
	return !s.paused && !exited(s)
}

// Pause stops server i (SIGSTOP) where it stands: its sockets stay open and
// nothing it was sent is answered, until Resume.
func (c *Processes) Pause(i int) {
	c.tb.Helper()
	c.signal(i, syscall.SIGSTOP, true)
}

// Resume lets a paused server i go on (SIGCONT).
func (c *Processes) Resume(i int) {
	c.tb.Helper()
	c.signal(i, syscall.SIGCONT, false)
}

func (c *Processes) signal(i int, sig syscall.Signal, paused bool) {
	c.tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[i]
	if err := s.cmd.Process.Signal(sig); err != nil {
		c.tb.Fatalf("nats-server %s: %v: %v", s.name, sig, err)
	}
	s.paused = paused
}

// Stop shuts server i down as an operator does (SIGINT: nats-server's own
// orderly shutdown, which hands its leaderships on), and waits until it has
// exited.
func (c *Processes) Stop(i int) {
	s := c.server(i)
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Signal(syscall.SIGINT)
	<-s.done
}

// Kill ends server i at once (SIGKILL), as a crash would, and waits until
// it has exited.
func (c *Processes) Kill(i int) {
	s := c.server(i)
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	<-s.done
}

// Consumers names the consumers of stream that the running servers hold,
// each once, as their monitoring ports tell (a test's account needs no
// permission for it): what a test names when a stream is not as it expects.
func (c *Processes) Consumers(stream string) []string {
	seen := map[string]bool{}
	var names []string
	for _, s := range c.all() {
		if s.paused || exited(s) {
			continue
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true&consumers=true", s.httpP))
		if err != nil {
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name      string `json:"name"`
					Consumers []struct {
						Name string `json:"name"`
					} `json:"consumer_detail"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, a := range jsz.Accounts {
			for _, st := range a.Streams {
				for _, cons := range st.Consumers {
					if st.Name == stream && !seen[cons.Name] {
						seen[cons.Name] = true
						names = append(names, cons.Name)
					}
				}
			}
		}
	}
	return names
}

// Restart starts a stopped or killed server i again on its ports and store,
// as an operator or a supervisor brings it back, and waits until it
// listens; it then rejoins the cluster and catches up on its own.
func (c *Processes) Restart(i int) {
	c.tb.Helper()
	s := c.server(i)
	if !exited(s) {
		c.tb.Fatalf("nats-server %s: restarted while it runs", s.name)
	}
	c.mu.Lock()
	err := s.run(natsServerBinary(c.tb))
	s.paused = false
	c.mu.Unlock()
	if err == nil {
		err = s.listening()
	}
	if err != nil {
		c.tb.Fatalf("nats-server %s: %v", s.name, err)
	}
}

func (c *Processes) shutdown() {
	for _, s := range c.all() {
		if s.cmd == nil || s.cmd.Process == nil {
			continue
		}
		s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
		s.cmd.Process.Kill()
		<-s.done
	}
}

var (
	natsServerOnce sync.Once
	natsServerPath string
	natsServerErr  error
)

// natsServerBinary builds the nats-server that go.mod names, once per test
// binary, into a directory of its own.
func natsServerBinary(tb testing.TB) string {
	tb.Helper()
	natsServerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokenledger-nats-server")
		if err != nil {
			natsServerErr = err
			return
		}
		natsServerPath = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", natsServerPath, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsServerErr = errors.New("building nats-server: " + string(out))
		}
	})
	if natsServerErr != nil {
		tb.Fatal(natsServerErr)
	}
	return natsServerPath
}

// logBuffer keeps what a process writes, for the test's log; safe for the
// process's writers and the test to use at once.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
