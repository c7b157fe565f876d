package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
)

// A tokenledger in three places, as deploy/README.md's "Regions" lays it
// out: a hub (a three-server JetStream cluster in domain `hub`, run from
// deploy/regions/hub.conf itself, with a node joined to it) and the regions
// eu and us (each a node with its own embedded NATS, a leaf node of the hub
// as the region's user; eu's leaf connection crosses links the test cuts
// and restores as a WAN drops and comes back).

// regionTestStaleness is the regional node's --max-staleness here: long
// enough that the region is seen answering after the cut on a loaded
// machine, short enough that the test sees it give up.
const regionTestStaleness = 12 * time.Second

// hubDeploy is the hub of the deploy example, started from its file, and
// the nkey seed file a region connects with.
type hubDeploy struct {
	*natstest.Processes
	regionCreds map[string]string // each region's seed file (eu, us), as --hub-creds takes it
}

// mustHub starts the hub's three servers from deploy/regions/hub.conf with
// the environment it names.
func mustHub(t *testing.T) hubDeploy {
	t.Helper()
	for k, v := range deployPasswords {
		t.Setenv(k, v)
	}
	t.Setenv("NATS_SERVER_NAME", "n") // each process gets its own
	h := hubDeploy{regionCreds: map[string]string{}}
	dir := t.TempDir()
	for _, region := range []string{"EU", "US"} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		t.Setenv("NATS_REGION_"+region+"_NKEY", pub)
		seed, _ := kp.Seed()
		name := strings.ToLower(region)
		h.regionCreds[name] = filepath.Join(dir, "region-"+name+".nk")
		if err := os.WriteFile(h.regionCreds[name], seed, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf, err := filepath.Abs(filepath.Join("..", "..", "deploy", "regions", "hub.conf"))
	if err != nil {
		t.Fatal(err)
	}
	h.Processes = natstest.MustProcessesFrom(t, conf)
	return h
}

// startServe runs `tokenledger serve args...` in this process, as startNode
// does for a joined node, on a free HTTP port.
func startServe(t *testing.T, name string, args ...string) *clusterNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &clusterNode{name: name, http: natstest.FreeAddr(t), stdout: &nodetest.Buffer{}, stderr: &nodetest.Buffer{},
		cancel: cancel, done: make(chan struct{})}
	args = append([]string{"serve", "--http", n.http}, args...)
	go func() {
		defer close(n.done)
		n.err = run(ctx, args, noEnv, strings.NewReader(""), n.stdout, n.stderr)
	}()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("node %s log:\n%s", n.name, n.stderr)
		}
	})
	return n
}

// natsURL is the embedded server's client URL, from the line a node prints
// once it serves.
func (n *clusterNode) natsURL(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(n.stdout.String(), "\n") {
		if m := readyLine.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	t.Fatalf("node %s did not say where it serves:\n%s", n.name, n.stdout)
	return ""
}

// connectRole connects to url as role, with the identity the node made in
// dataDir.
func connectRole(t *testing.T, url, dataDir, role string) *nats.Conn {
	t.Helper()
	id, err := access.ReadIdentity(access.Path(dataDir, role))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, append(id.Options(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// The region answers validations from its own table with the hub out of
// reach, refuses commands at once as unavailable, gives up answering once
// its table is older than --max-staleness, and once the link returns
// refuses a token revoked at the hub during the outage; the other region
// goes on meanwhile, commands included. The run leaves
// nothing behind: on the hub's stream no consumer beyond those it held at
// rest before the outage, and in this process no goroutine.
func TestRegionThroughAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a hub cluster and two nodes")
	}
	key := mustSigningKey(t) // before the count: its files outlive the run
	before := ours()
	t.Run("outage", func(t *testing.T) {
		hub := mustHub(t)
		hubNode := startNode(t, "hub", hub.URLs(), key, t.TempDir(), "--nats-user", "node", "--nats-password", deployPasswords["NATS_NODE_PASSWORD"])
		hubNode.serving(t)
		op := []string{"--nats-user", "operator", "--nats-password", deployPasswords["NATS_OPERATOR_PASSWORD"]}
		hubCLI := func(args ...string) (string, int, error) {
			return runClient(hub.URLs(), append(append(args[:1:1], op...), args[1:]...)...)
		}

		// The region reaches the hub's servers only through the links (the
		// hub tells it of no other address): cut, the region is alone.
		var links []*natstest.Link
		var hubURLs []string
		for i := range natstest.ClusterSize {
			links = append(links, natstest.MustLink(t, hub.LeafAddr(i)))
			hubURLs = append(hubURLs, "nats-leaf://"+links[i].Addr())
		}
		cut := func() {
			for _, l := range links {
				l.Cut()
			}
		}
		restore := func() {
			for _, l := range links {
				l.Restore()
			}
		}
		live := func() (n int) {
			for _, l := range links {
				n += l.Live()
			}
			return n
		}
		regionDir := t.TempDir()
		region := startServe(t, "eu", "--region", "eu", "--hub", strings.Join(hubURLs, ","), "--hub-creds", hub.regionCreds["eu"],
			"--hub-domain", "hub", "--listen", "127.0.0.1:0", "--data-dir", regionDir, "--signing-key", key,
			"--max-staleness", regionTestStaleness.String())
		region.serving(t)
		regionURL := region.natsURL(t)
		regionCLI := func(args ...string) (string, int, error) {
			return runClient(regionURL, append([]string{args[0], "--data-dir", regionDir}, args[1:]...)...)
		}
		inRegion := connectRole(t, regionURL, regionDir, access.Validator)

		// The second region of deploy/'s example, linked straight to the
		// hub's servers: it goes on while eu is cut off.
		var usURLs []string
		for i := range natstest.ClusterSize {
			usURLs = append(usURLs, "nats-leaf://"+hub.LeafAddr(i))
		}
		usDir := t.TempDir()
		us := startServe(t, "us", "--region", "us", "--hub", strings.Join(usURLs, ","), "--hub-creds", hub.regionCreds["us"],
			"--hub-domain", "hub", "--listen", "127.0.0.1:0", "--data-dir", usDir, "--signing-key", key)
		us.serving(t)
		usURL := us.natsURL(t)
		usCLI := func(args ...string) (string, int, error) {
			return runClient(usURL, append([]string{args[0], "--data-dir", usDir}, args[1:]...)...)
		}
		inUS := connectRole(t, usURL, usDir, access.Validator)

		// Stream consumers on the hub, asked as the hub's auditor.
		audit, err := nats.Connect(hub.URLs(), nats.UserInfo("auditor", deployPasswords["NATS_AUDITOR_PASSWORD"]),
			nats.CustomInboxPrefix(access.InboxPrefix(access.Auditor)))
		if err != nil {
			t.Fatal(err)
		}
		defer audit.Close()
		hubConsumers := func() int { return natstest.MustStreamInfo(t, audit, "TOKENS").State.Consumers }
		// At rest the hub's stream has one consumer, the hub node's
		// follower: the region's mirror copies through the server's own
		// consumer, which is not counted among the stream's. A read's
		// consumer whose deletion went unanswered on a loaded machine stays
		// until the server's inactivity threshold (30 s) removes it, so the
		// wait is a minute; past it, the consumers left are named.
		const atRest = 1
		hubAtRest := func(what string) {
			t.Helper()
			for deadline := time.Now().Add(time.Minute); hubConsumers() != atRest; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("timed out waiting for %s: consumers %q", what, hub.Consumers("TOKENS"))
				}
			}
		}

		// Made at the hub, answered in the region once the mirror has it.
		keep := mustCreateVia(t, hubCLI, "bob", "keep")
		gone := mustCreateVia(t, hubCLI, "bob", "gone")
		for _, tok := range []string{keep, gone} {
			for _, nc := range []*nats.Conn{inRegion, inUS} {
				natstest.Eventually(t, "the hub's new token valid in each region", func() bool {
					rep, ok := validate(nc, tok)
					return ok && rep.Valid
				})
			}
		}
		hubAtRest("the hub's stream at rest")
		// A command from the region goes to the hub, and the region reads
		// its own write.
		if _, code, err := regionCLI("rename", "--account", "bob", "--name", "keep", "--new-name", "kept"); code != 0 {
			t.Fatalf("rename from the region: exit %d: %v", code, err)
		}
		natstest.Eventually(t, "the rename listed at the hub", func() bool {
			out, code, _ := hubCLI("list", "--account", "bob")
			return code == 0 && strings.Contains(out, "kept")
		})

		hubShown(t, region.http, "linked")

		cut()
		natstest.Eventually(t, "the region's link to the hub down", func() bool { return live() == 0 })
		hubShown(t, region.http, "unreachable")
		t.Run("validations answered in the region", func(t *testing.T) {
			if rep := answered(t, inRegion, keep); !rep.Valid {
				t.Fatalf("with the hub away, the region refused a valid token: %+v", rep)
			}
		})
		t.Run("commands refused at once", func(t *testing.T) {
			asked := time.Now()
			_, code, err := regionCLI("create", "--account", "bob", "--name", "offline")
			t.Logf("the region's refusal took %v", time.Since(asked).Round(time.Millisecond))
			if code != 3 || events.ErrorCode(err) != events.Unavailable {
				t.Fatalf("create in a cut-off region: exit %d, %v; want exit 3, unavailable", code, err)
			}
		})
		if _, code, err := hubCLI("revoke", "--account", "bob", "--name", "gone"); code != 0 {
			t.Fatalf("revoke at the hub during the outage: exit %d: %v", code, err)
		}
		var fromUS string
		t.Run("the other region goes on", func(t *testing.T) {
			fromUS = mustCreateVia(t, usCLI, "bob", "from-us")
			natstest.Eventually(t, "the revoke at the hub refused in the us region", func() bool {
				rep, ok := validate(inUS, gone)
				return ok && !rep.Valid && rep.Reason == "revoked"
			})
		})
		t.Run("stale region answers unavailable", func(t *testing.T) {
			// No validation is answered "valid" past the limit: the node
			// says unavailable, and its /readyz says it is not ready.
			var last string
			defer func() {
				if t.Failed() {
					t.Logf("the region's last answer: %s", last)
				}
			}()
			natstest.EventuallyWithin(t, time.Minute, "the cut-off region unavailable", func() bool {
				out, code, err := regionCLI("validate", keep)
				last = fmt.Sprintf("exit %d, %v: %s", code, err, out)
				return code == 3 && events.ErrorCode(err) == events.Unavailable
			})
			if code := readyzStatus(t, region.http); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz of the stale region: %d, want 503", code)
			}
		})

		restore()
		restored := time.Now()
		t.Run("revoke seen after the outage", func(t *testing.T) {
			natstest.EventuallyWithin(t, time.Minute, "the revoked token refused in the region", func() bool {
				rep, ok := validate(inRegion, gone)
				return ok && !rep.Valid && rep.Reason == "revoked"
			})
			t.Logf("the revoke refused in the region %v after the links were restored", time.Since(restored).Round(time.Millisecond))
			for _, tok := range []string{keep, fromUS} {
				natstest.Eventually(t, "a valid token valid in the region again", func() bool {
					rep, ok := validate(inRegion, tok)
					return ok && rep.Valid
				})
			}
			natstest.Eventually(t, "the region ready again", func() bool { return readyzStatus(t, region.http) == http.StatusOK })
			hubShown(t, region.http, "linked")
		})

		// Left on the hub's stream: what was there at rest before the
		// outage; the consumers of the region's reads are gone.
		hubAtRest(fmt.Sprintf("%d consumers on the hub's stream, as at rest", atRest))
	})
	// Every goroutine of the nodes, the region's embedded server, the
	// link and the hub's processes has ended with the run's cleanups.
	deadline := time.Now().Add(30 * time.Second)
	for ours() > before {
		if time.Now().After(deadline) {
			var stacks bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Fatalf("%d goroutines after the run, %d before:\n%s", ours(), before, stacks.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ours is how many goroutines run in this process, less the one that
// os/signal starts at serve's first signal.Notify and keeps for the life of
// the process.
func ours() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.TrimSpace(g) != "" && !strings.Contains(g, "os/signal.loop") {
			n++
		}
	}
	return n
}

// mustCreateVia creates account/name with cli and returns the secret.
func mustCreateVia(t *testing.T, cli func(...string) (string, int, error), account, name string) string {
	t.Helper()
	out, code, err := cli("create", "--account", account, "--name", name)
	if code != 0 {
		t.Fatalf("create %s/%s: exit %d: %v", account, name, code, err)
	}
	return strings.TrimSpace(out)
}

// readyzStatus is what a load balancer sees on the node's /readyz.
func readyzStatus(t *testing.T, addr string) int {
	code, _ := httpGet(addr, "/readyz")
	return code
}

// httpGet asks the node at addr for path, without keeping a connection
// open after; 0: no answer.
func httpGet(addr, path string) (int, string) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// hubShown waits until the regional node at addr shows its link to the hub
// as state (linked, unreachable) on /readyz's second line and on /metrics.
func hubShown(t *testing.T, addr, state string) {
	t.Helper()
	gauge := map[string]string{"linked": "tokenledger_hub_linked 1", "unreachable": "tokenledger_hub_linked 0"}[state]
	var readyz, metrics string
	natstest.EventuallyWithin(t, time.Minute, "the region showing the hub "+state, func() bool {
		_, readyz = httpGet(addr, "/readyz")
		_, metrics = httpGet(addr, "/metrics")
		return strings.Contains(readyz, "\nhub: "+state+",") && strings.Contains(metrics, "\n"+gauge+"\n")
	})
	for _, m := range []string{"tokenledger_hub_lag_events", "tokenledger_hub_silence_seconds"} {
		if !strings.Contains(metrics, "\n"+m+" ") {
			t.Errorf("/metrics of a regional node has no %s", m)
		}
	}
}

// deploy/regions/hub.conf is deploy/nats/nats.conf with the hub's
// additions: every user of nats.conf has the same rights there, each region
// user has the embedded hub's region role's and may only connect as a leaf
// node, and the hub's domain is the one --hub-domain names by default.
func TestDeployHubMatchesCluster(t *testing.T) {
	for k, v := range deployPasswords {
		t.Setenv(k, v)
	}
	t.Setenv("NATS_SERVER_NAME", "n")
	regionKeys := map[string]bool{}
	for _, region := range []string{"EU", "US"} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		t.Setenv("NATS_REGION_"+region+"_NKEY", pub)
		regionKeys[pub] = true
	}
	cluster, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "regions", "hub.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if hub.JetStreamDomain != "hub" {
		t.Errorf("hub.conf's JetStream domain: %q, want hub (--hub-domain's default)", hub.JetStreamDomain)
	}
	if hub.LeafNode.Port == 0 {
		t.Errorf("hub.conf has no leafnode listener")
	}
	same := func(what string, have, want *server.Permissions) {
		t.Helper()
		for _, c := range []struct {
			what       string
			have, want []string
		}{
			{"publish allow", have.Publish.Allow, want.Publish.Allow},
			{"publish deny", denyOf(have.Publish), denyOf(want.Publish)},
			{"subscribe allow", have.Subscribe.Allow, want.Subscribe.Allow},
			{"subscribe deny", denyOf(have.Subscribe), denyOf(want.Subscribe)},
		} {
			if !sameSet(c.have, c.want) {
				t.Errorf("%s %s:\n have %q\n want %q", what, c.what, c.have, c.want)
			}
		}
	}
	hubUsers := map[string]*server.User{}
	for _, u := range hub.Users {
		hubUsers[u.Username] = u
	}
	for _, u := range cluster.Users {
		h, ok := hubUsers[u.Username]
		if !ok {
			t.Errorf("hub.conf has no user %s of nats.conf", u.Username)
			continue
		}
		if u.Permissions != nil || h.Permissions != nil {
			if u.Permissions == nil || h.Permissions == nil {
				t.Errorf("user %s: permissions in one file only", u.Username)
				continue
			}
			same("user "+u.Username+" (hub.conf, nats.conf)", h.Permissions, u.Permissions)
		}
	}
	if len(hub.Users) != len(cluster.Users) {
		t.Errorf("hub.conf has %d password users, nats.conf %d", len(hub.Users), len(cluster.Users))
	}
	want := access.RegionPermissions((&clientConfig{Stream: "TOKENS", Prefix: "tokens"}).streamConfig(), "hub")
	seen := 0
	for _, u := range hub.Nkeys {
		if !regionKeys[u.Nkey] {
			t.Errorf("hub.conf has an nkey user %s that is no region's", u.Nkey)
			continue
		}
		seen++
		same("region user", u.Permissions, want)
		if _, leaf := u.AllowedConnectionTypes["LEAFNODE"]; !leaf || len(u.AllowedConnectionTypes) != 1 {
			t.Errorf("region user may connect as %v, want only LEAFNODE", u.AllowedConnectionTypes)
		}
		if u.Account == nil || u.Account.Name != "LEDGER" {
			t.Errorf("region user in account %v, want LEDGER", u.Account)
		}
	}
	if seen != len(regionKeys) {
		t.Errorf("hub.conf has %d region users, want %d", seen, len(regionKeys))
	}
}
