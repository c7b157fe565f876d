package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/natsapi"
)

// Three nodes on a three-server cluster at the servers' default limits
// (1,000 consumers per stream) take a few thousand commands that race on
// the same accounts through different nodes, so that commands lose races
// and catch up, while one node restarts and history and verify run. The
// stream's consumers stay few throughout (a node's follower, a read that
// outgrows its gets, an audit's), and once the load is over only the nodes'
// followers are left; no command is refused on a stale view of its account.
func TestClusterConsumersStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster under load")
	}
	c := natstest.MustCluster(t)
	key := mustSigningKey(t)
	const nodes = natstest.ClusterSize
	dirs := make([]string, nodes)
	ns := make([]*clusterNode, nodes)
	for i := range nodes {
		dirs[i] = t.TempDir()
		// Node i on server i: a client of server i is answered by node i,
		// as NATS gives a queue group's request to a member on its own
		// server first.
		ns[i] = startNode(t, fmt.Sprintf("n%d", i), c.URL(i), key, dirs[i])
		ns[i].serving(t)
	}
	waitService(t, c, nodes)
	conns := make([]*nats.Conn, nodes)
	for i := range conns {
		conns[i] = mustConnectAs(t, c.URL(i))
	}

	// The stream's consumers, sampled through the load.
	js, err := jetstream.New(conns[0])
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(context.Background(), "TOKENS")
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() (int, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := stream.Info(ctx)
		if err != nil {
			return 0, false
		}
		return info.State.Consumers, true
	}
	// A follower per node, and one more while a node restarts (the old
	// follower's until it is deleted) or a read outgrows its gets; and the
	// audits running.
	const audits = 2
	const bound = 2*nodes + audits
	var most, samples int // written by the sampler until it is done
	sampling, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	stopped := func() { stopSampling(); <-sampled }
	defer stopped()
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-tick.C:
			}
			if n, ok := consumers(); ok {
				samples++
				most = max(most, n)
			}
		}
	}()

	// Six writers on four accounts, each command of a token through a
	// different node than the one before.
	const writers, accounts, rounds = 6, 4, 120
	var (
		done  atomic.Int64 // commands answered
		wg    sync.WaitGroup
		phase = func(n int64) func() bool {
			return func() bool { return done.Load() >= n || t.Failed() }
		}
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				account := fmt.Sprintf("acct%d", (w+i)%accounts)
				name := fmt.Sprintf("w%d-%d", w, i)
				via := func(k int) *natsapi.Client { return natsapi.NewClient(conns[(w+i+k)%nodes], "tokens") }
				steps := []struct {
					what string
					done string // the refusal that means an earlier attempt was stored
					run  func(context.Context) error
				}{
					{"create " + name, events.Duplicate, func(ctx context.Context) error {
						_, err := via(0).Create(ctx, natsapi.CreateRequest{Account: account, Name: name})
						return err
					}},
					{"rename " + name, events.NotFound, func(ctx context.Context) error {
						return via(1).Rename(ctx, natsapi.RenameRequest{Account: account, Name: name, NewName: name + "r"})
					}},
					{"revoke " + name + "r", events.NotFound, func(ctx context.Context) error {
						return via(2).Revoke(ctx, natsapi.RevokeRequest{Account: account, Names: []string{name + "r"}})
					}},
				}
				for _, s := range steps {
					if err := untilDone(s.run, s.done); err != nil {
						t.Errorf("%s of %s: %v", s.what, account, err)
						return
					}
					done.Add(1)
				}
				if i%10 == 0 {
					// Every writer creates the same name in one account
					// at about the same time, through its node: one wins.
					shared := fmt.Sprintf("shared%d", i)
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := via(0).Create(ctx, natsapi.CreateRequest{Account: "acct0", Name: shared})
					cancel()
					switch events.ErrorCode(err) {
					case "", events.Duplicate, events.Conflict, events.Unavailable:
					default:
						t.Errorf("create %s of acct0: %v", shared, err)
						return
					}
					done.Add(1)
				}
			}
		}()
	}
	total := int64(writers * rounds * 3)

	// A node restarts while the others are busy.
	natstest.EventuallyWithin(t, time.Minute, "a third of the commands", phase(total/3))
	ns[1].stop(t)
	ns[1] = startNode(t, "n1-again", c.URL(1), key, dirs[1])
	ns[1].serving(t)

	// The audits run while the others are busy.
	natstest.EventuallyWithin(t, time.Minute, "two thirds of the commands", phase(2*total/3))
	var audited sync.WaitGroup
	for _, args := range [][]string{{"history"}, {"verify", "--data-dir", dirs[0]}} {
		audited.Add(1)
		go func() {
			defer audited.Done()
			if _, code, err := runClient(c.URLs(), args...); code != 0 {
				t.Errorf("%s during the load: exit %d: %v", args[0], code, err)
			}
		}()
	}
	wg.Wait()
	audited.Wait()
	if t.Failed() {
		t.FailNow()
	}
	out, code, err := runClient(c.URLs(), "verify", "--data-dir", dirs[0])
	if code != 0 || !strings.Contains(out, " 0 bad") {
		t.Fatalf("verify after the load: exit %d: %v\n%s", code, err, out)
	}
	if _, code, err := runClient(c.URLs(), "history", "--account", "acct0"); code != 0 {
		t.Fatalf("history after the load: exit %d: %v", code, err)
	}
	stopped()
	t.Logf("%d commands; at most %d consumers on the stream in %d samples", done.Load(), most, samples)
	if most > bound {
		t.Errorf("%d consumers on the stream at once, want at most %d", most, bound)
	}

	// Every writer's own tokens are revoked: no refusal was wrong. (Node
	// n0 answers, and may be a moment behind the last revoke.)
	live := func() []string {
		var names []string
		for a := range accounts {
			account := fmt.Sprintf("acct%d", a)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			toks, err := natsapi.NewClient(conns[0], "tokens").List(ctx, account)
			cancel()
			if err != nil {
				return []string{fmt.Sprintf("(list of %s: %v)", account, err)}
			}
			for _, tok := range toks {
				if !strings.HasPrefix(tok.Name, "shared") {
					names = append(names, account+"/"+tok.Name)
				}
			}
		}
		return names
	}
	left := live()
	for deadline := time.Now().Add(20 * time.Second); len(left) > 0 && time.Now().Before(deadline); {
		left = live()
	}
	if len(left) > 0 {
		t.Errorf("writers' tokens still live 20 s after the load: %v", left)
	}

	// Only the nodes' followers are left.
	natstest.EventuallyWithin(t, time.Minute, fmt.Sprintf("only the %d followers left on the stream", nodes), func() bool {
		n, ok := consumers()
		return ok && n == nodes
	})
}

// untilDone runs cmd until it is done, asking again while no node answers
// in time (a node restarting) or the account keeps changing under it. A
// command whose answer was lost may yet have been stored: asked again, it is
// refused with the code done, which then counts as done, and only then.
func untilDone(cmd func(context.Context) error, done string) error {
	again := false
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cmd(ctx)
		cancel()
		switch code := events.ErrorCode(err); {
		case err == nil, again && code == done:
			return nil
		case (code == events.Unavailable || code == events.Conflict) && time.Now().Before(deadline):
			again = true
		default:
			return err
		}
	}
}

// mustConnectAs connects a client with its own reply inbox, as the service
// asks of a sender of commands.
func mustConnectAs(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.CustomInboxPrefix("_INBOX_test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
