package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/natsapi"
)

// Several nodes on one real three-server JetStream cluster, each run as the
// program itself (`run` with `serve --nats ...`), driven through the CLI and
// the NATS service as a hosting company's panel would drive them.

// clusterNode is one `tokenledger serve` joined to the test cluster.
type clusterNode struct {
	name   string
	http   string
	stdout *nodetest.Buffer
	stderr *nodetest.Buffer
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what run returned, once done is closed
}

func noEnv(string) string { return "" }

// mustSigningKey writes one signing seed for every node of a test, as the
// nodes of one deployment share one (or trust each other's).
func mustSigningKey(t *testing.T) string {
	t.Helper()
	var seed bytes.Buffer
	if err := run(context.Background(), []string{"keygen"}, noEnv, strings.NewReader(""), &seed, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing.nk")
	if err := os.WriteFile(path, seed.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startNode runs `tokenledger serve --nats urls` in this process. dataDir is
// the node's own directory: the same one again is the same node restarted.
func startNode(t *testing.T, name, urls, key, dataDir string, extra ...string) *clusterNode {
	t.Helper()
	return startServe(t, name, append([]string{"--nats", urls, "--data-dir", dataDir, "--signing-key", key}, extra...)...)
}

// serving waits until the node says it answers on the `tokens` service.
func (n *clusterNode) serving(t *testing.T) {
	t.Helper()
	natstest.Eventually(t, "node "+n.name+" serving", func() bool {
		select {
		case <-n.done:
			t.Fatalf("node %s ended: %v\n%s", n.name, n.err, n.stderr)
		default:
		}
		return strings.Contains(n.stdout.String(), "tokenledger serving")
	})
}

// servers is a test cluster, in this process (natstest.Cluster) or in
// processes of their own (natstest.Processes).
type servers interface {
	URL(i int) string
	Running(i int) bool
}

// waitService waits until every server of c routes requests to n instances
// of the `tokens` service: a node's subscriptions reach the other servers of
// the cluster a moment after the node says it serves.
func waitService(t *testing.T, c servers, n int) {
	t.Helper()
	for i := range natstest.ClusterSize {
		if !c.Running(i) {
			continue
		}
		nc := mustConnect(t, c.URL(i))
		natstest.Eventually(t, fmt.Sprintf("%d instances of the service seen from server %d", n, i), func() bool {
			inbox := nc.NewRespInbox()
			sub, err := nc.SubscribeSync(inbox)
			if err != nil {
				return false
			}
			defer sub.Unsubscribe()
			if nc.PublishRequest("$SRV.PING."+natsapi.ServiceName, inbox, nil) != nil {
				return false
			}
			for seen := 0; ; seen++ {
				if seen == n {
					return true
				}
				if _, err := sub.NextMsg(500 * time.Millisecond); err != nil {
					return false
				}
			}
		})
		nc.Close()
	}
}

// ready is what a load balancer sees on /readyz.
func (n *clusterNode) ready() bool {
	resp, err := http.Get("http://" + n.http + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop ends the node as SIGTERM would, and checks that it ended cleanly.
func (n *clusterNode) stop(t *testing.T) {
	n.cancel()
	select {
	case <-n.done:
		if n.err != nil {
			t.Errorf("node %s ended with %v", n.name, n.err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("node %s did not stop within 30 s", n.name)
	}
}

// runClient runs one client command in this process and returns its stdout, the
// exit status a user would see, and the error behind it.
func runClient(urls string, args ...string) (string, int, error) {
	var stdout, stderr bytes.Buffer
	args = append(args[:1:1], append([]string{"--nats", urls}, args[1:]...)...)
	err := run(context.Background(), args, noEnv, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), exitCode(err), err
}

func create(urls, account, name string) (natsapi.NewToken, error) {
	var tok natsapi.NewToken
	out, code, err := runClient(urls, "create", "--account", account, "--name", name, "--json")
	if code != 0 {
		return tok, fmt.Errorf("create %s/%s: exit %d: %v", account, name, code, err)
	}
	return tok, json.Unmarshal([]byte(out), &tok)
}

func mustCreate(t *testing.T, urls, account, name string) natsapi.NewToken {
	t.Helper()
	tok, err := create(urls, account, name)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustConnect(t *testing.T, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// validate asks whichever node the queue group picks; ok is false when none
// answered.
func validate(nc *nats.Conn, secret string) (natsapi.ValidateReply, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rep, err := natsapi.NewClient(nc, "tokens").Validate(ctx, secret, "")
	return rep, err == nil
}

// answered asks until a node answers, and returns the answer: a request the
// cluster routes to a node that has just stopped, or that a loaded machine
// does not answer in time, goes unanswered, and a client asks again.
func answered(t *testing.T, nc *nats.Conn, secret string) natsapi.ValidateReply {
	t.Helper()
	var rep natsapi.ValidateReply
	natstest.Eventually(t, "a node to answer a validation", func() bool {
		var ok bool
		rep, ok = validate(nc, secret)
		return ok
	})
	return rep
}

// endpointRequests asks every running instance of the `tokens` service how
// many requests each has answered on endpoint, by instance id.
func endpointRequests(t *testing.T, nc *nats.Conn, endpoint string, instances int) map[string]int {
	t.Helper()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	// A node that cannot vouch for its table for a moment (a loaded
	// machine) leaves the service, its stats included, until it can again:
	// ask until every instance has answered once.
	counts := map[string]int{}
	natstest.Eventually(t, fmt.Sprintf("service stats from %d instances", instances), func() bool {
		if err := nc.PublishRequest("$SRV.STATS."+natsapi.ServiceName, inbox, nil); err != nil {
			t.Fatal(err)
		}
		for len(counts) < instances {
			m, err := sub.NextMsg(2 * time.Second)
			if err != nil {
				return false
			}
			var st micro.Stats
			if err := json.Unmarshal(m.Data, &st); err != nil {
				t.Fatal(err)
			}
			counts[st.ID] = 0
			for _, e := range st.Endpoints {
				if e.Name == endpoint {
					counts[st.ID] = e.NumRequests
				}
			}
		}
		return true
	})
	return counts
}

// Two nodes on three servers: the stream gets three copies by itself, any node
// takes commands, a race for one name has one winner, and a revoke made on one
// node is refused by every node.
func TestClusterTwoNodes(t *testing.T) {
	c := natstest.MustCluster(t)
	key := mustSigningKey(t)
	a := startNode(t, "a", c.URL(0), key, t.TempDir())
	b := startNode(t, "b", c.URL(1), key, t.TempDir())
	a.serving(t)
	b.serving(t)
	waitService(t, c, 2)
	nc := mustConnect(t, c.URLs())
	if have := natstest.MustStreamInfo(t, nc, "TOKENS").Config.Replicas; have != 3 {
		t.Fatalf("stream replicas on a three-server cluster: have %d, want 3", have)
	}

	t.Run("race for one name", func(t *testing.T) {
		const rounds = 20
		for i := range rounds {
			name := fmt.Sprintf("race%d", i)
			codes := make([]int, 2)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for j := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, codes[j], errs[j] = runClient(c.URLs(), "create", "--account", "racer", "--name", name)
				}()
			}
			wg.Wait()
			winners := 0
			for j := range 2 {
				switch code := events.ErrorCode(errs[j]); {
				case codes[j] == 0:
					winners++
				case codes[j] == 1 && (code == events.Duplicate || code == events.Conflict):
				default:
					t.Fatalf("%s: a racer failed otherwise: exit %d, %v", name, codes[j], errs[j])
				}
			}
			if winners != 1 {
				t.Fatalf("%s: %d winners, want exactly 1 (%v)", name, winners, errs)
			}
		}
		// A node replies once it has applied its own write; the other
		// applies it a moment later.
		var listed []natsapi.TokenInfo
		natstest.Eventually(t, fmt.Sprintf("%d winners listed", rounds), func() bool {
			out, code, err := runClient(c.URLs(), "list", "--account", "racer", "--json")
			if code != 0 {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(out), &listed); err != nil {
				t.Fatal(err)
			}
			if len(listed) > rounds {
				t.Fatalf("listed %d tokens, want %d: %s", len(listed), rounds, out)
			}
			return len(listed) == rounds
		})
		for id, n := range endpointRequests(t, nc, "create", 2) {
			if n == 0 {
				t.Errorf("instance %s took no create of %d: the queue group should share them", id, 2*rounds)
			}
		}
	})

	t.Run("revoke refused by every node", func(t *testing.T) {
		tok := mustCreate(t, c.URLs(), "bob", "deploy")
		natstest.Eventually(t, "the new token valid", func() bool {
			rep, ok := validate(nc, tok.Token)
			return ok && rep.Valid
		})
		if _, code, err := runClient(c.URLs(), "revoke", "--account", "bob", "--name", "deploy"); code != 0 {
			t.Fatalf("revoke: exit %d: %v", code, err)
		}
		revoked := time.Now()
		// Refused by every node: a run of refusals after the last acceptance
		// in which each instance answered at least once.
		lastValid := revoked
		since := endpointRequests(t, nc, "validate", 2)
		refusals := 0
		deadline := time.Now().Add(10 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("the revoked token was still accepted or not every node was asked 10 s after the revoke")
			}
			rep, ok := validate(nc, tok.Token)
			if !ok {
				continue
			}
			if rep.Valid {
				lastValid, refusals = time.Now(), 0
				since = endpointRequests(t, nc, "validate", 2)
				continue
			}
			if rep.Reason != "revoked" {
				t.Fatalf("refused as %q, want revoked", rep.Reason)
			}
			if refusals++; refusals < 20 {
				continue
			}
			every := true
			for id, n := range endpointRequests(t, nc, "validate", 2) {
				every = every && n > since[id]
			}
			if every {
				break
			}
		}
		t.Logf("revoke refused by both nodes; last acceptance %v after the revoke's reply", lastValid.Sub(revoked))
	})
}

// A node that starts late, or again, catches up from the stream and answers
// only once it has: it never says "unknown" for a token created before it.
func TestClusterLateNodeCatchesUp(t *testing.T) {
	c := natstest.MustCluster(t)
	key := mustSigningKey(t)
	aDir := t.TempDir()
	a := startNode(t, "a", c.URLs(), key, aDir)
	a.serving(t)
	waitService(t, c, 1)

	const accounts, perAccount = 8, 12
	var (
		mu      sync.Mutex
		secrets []string
		wg      sync.WaitGroup
	)
	for i := range accounts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perAccount {
				tok, err := create(c.URLs(), fmt.Sprintf("acct%d", i), fmt.Sprintf("t%d", j))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				secrets = append(secrets, tok.Token)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	newest := mustCreate(t, c.URLs(), "late", "newest")
	a.stop(t)

	// With a gone, only b can answer: from its first answer on, each must know
	// the newest token.
	nc := mustConnect(t, c.URLs())
	b := startNode(t, "b", c.URLs(), key, t.TempDir())
	start, answers := time.Now(), 0
	var readyAt time.Duration
	natstest.Eventually(t, "node b answering with the whole stream", func() bool {
		if readyAt == 0 && b.ready() {
			readyAt = time.Since(start)
		}
		rep, ok := validate(nc, newest.Token)
		if !ok {
			if answers > 0 {
				t.Fatalf("node b stopped answering after %d answers", answers)
			}
			return false
		}
		if !rep.Valid {
			t.Fatalf("node b answered %q before it had caught up", rep.Reason)
		}
		answers++
		return answers >= 20
	})
	t.Logf("node b ready %v after start, on %d events", readyAt, accounts*perAccount+1)
	for _, s := range secrets {
		if rep := answered(t, nc, s); !rep.Valid {
			t.Fatalf("node b does not know a token created before it started: %+v", rep)
		}
	}

	// a starts again on its old directory while b changes the ledger.
	later := mustCreate(t, c.URLs(), "late", "later")
	if _, code, err := runClient(c.URLs(), "revoke", "--account", "late", "--name", "newest"); code != 0 {
		t.Fatalf("revoke: exit %d: %v", code, err)
	}
	a = startNode(t, "a-again", c.URLs(), key, aDir)
	a.serving(t)
	waitService(t, c, 2)
	if !a.ready() {
		t.Fatal("node a serves but /readyz says it is not ready")
	}
	b.stop(t)
	if rep := answered(t, nc, later.Token); !rep.Valid {
		t.Fatalf("restarted node a does not know a token made while it was down: %+v", rep)
	}
	if rep := answered(t, nc, newest.Token); rep.Valid {
		t.Fatalf("restarted node a accepts a token revoked while it was down: %+v", rep)
	}
}
