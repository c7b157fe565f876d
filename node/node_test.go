package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/natsapi"
	"tokenledger/node"
)

func mustKeys(t *testing.T) (*events.Signer, *events.Trust) {
	t.Helper()
	return nodetest.MustKeys(t)
}

// TestNodeServesUntilItsContextEnds: a node with every part joins a NATS,
// says once that it is serving, answers on NATS and HTTP, and once its
// context ends answers on neither and returns.
func TestNodeServesUntilItsContextEnds(t *testing.T) {
	s := natstest.MustServer(t)
	signer, trust := mustKeys(t)
	serving := make(chan struct{}, 2)
	ctx := context.Background()
	n, err := node.New(ctx, node.Config{Join: s.ClientURL(), Stream: events.DefaultConfig(), Signer: signer, Trust: trust,
		Parts: node.All, HTTP: "127.0.0.1:0", Version: "0.0.0-test", Warn: 24 * time.Hour, MaxStaleness: 5 * time.Second,
		SnapEvents: 1000, SnapEvery: time.Minute, UsedEvery: time.Minute, NoticeEvery: time.Minute,
		Serving: func() { serving <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	select {
	case <-serving:
	case <-time.After(20 * time.Second):
		t.Fatal("the node did not say it was serving")
	}
	created, err := n.Ledger().Create(ctx, commands.Create{Account: "bob", Name: "ci", Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	client := natstest.MustConnect(t, s)
	body, _ := json.Marshal(natsapi.ValidateRequest{Token: created.Secret})
	natstest.Eventually(t, "the new token valid on NATS", func() bool {
		m, err := client.Request("tokens.validate", body, 5*time.Second)
		var reply natsapi.ValidateReply
		return err == nil && json.Unmarshal(m.Data, &reply) == nil && reply.Valid
	})
	resp, err := http.Get(n.HTTPURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d, want 200", resp.StatusCode)
	}
	select {
	case <-n.HugePaged():
	case <-time.After(20 * time.Second):
		t.Error("the ready node did not move its table to huge pages")
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return once its context ended")
	}
	if len(serving) > 0 {
		t.Error("the node said twice that it was serving")
	}
	// The server drops the node's subscriptions once it has seen the
	// connection close, which it may not have yet: a request in that moment
	// goes to the closed connection and is not answered.
	natstest.Eventually(t, "no responders on tokens.validate after the node stopped", func() bool {
		_, err := client.Request("tokens.validate", body, time.Second)
		return errors.Is(err, nats.ErrNoResponders)
	})
	if _, err := http.Get(n.HTTPURL() + "/readyz"); err == nil {
		t.Error("HTTP answers after the node stopped")
	}
	if !n.Conn().IsClosed() {
		t.Error("the node's connection is open after it stopped")
	}
}

// TestNodeRefusesAnAddressInUse: a setting that cannot work is the
// caller's to correct (invalid), and New releases what it took.
func TestNodeRefusesAnAddressInUse(t *testing.T) {
	s := natstest.MustServer(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	signer, trust := mustKeys(t)
	_, err = node.New(context.Background(), node.Config{Join: s.ClientURL(), Stream: events.DefaultConfig(), Signer: signer, Trust: trust,
		Parts: node.HTTP, HTTP: taken.Addr().String()})
	if events.ErrorCode(err) != events.Invalid {
		t.Fatalf("New on an address in use: %v, want code invalid", err)
	}
	natstest.Eventually(t, "the node's connection gone", func() bool { return s.NumClients() == 0 })
}

// TestJoiningNodeWaitsForJetStreamToAnswer: a node that joins a cluster
// whose JetStream cannot answer yet (two of three servers paused, so no
// quorum) asks again rather than giving up at the first unanswered request,
// and starts once the cluster answers. Nodes started beside a cluster that
// is still settling meet this.
func TestJoiningNodeWaitsForJetStreamToAnswer(t *testing.T) {
	c := natstest.MustProcesses(t)
	signer, trust := mustKeys(t)
	c.Pause(1)
	c.Pause(2)
	asked := make(chan struct{})
	var once sync.Once
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		if bytes.Contains(p, []byte("JetStream did not answer; asking again")) {
			once.Do(func() { close(asked) })
		}
		return len(p), nil
	}), nil))
	built := make(chan error, 1)
	go func() {
		n, err := node.New(context.Background(), node.Config{Join: c.URL(0), Stream: events.DefaultConfig(), Signer: signer,
			Trust: trust, Parts: node.Service, Warn: 24 * time.Hour, MaxStaleness: 5 * time.Second, Log: log})
		if err == nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err = n.Run(ctx) // releases what New took
		}
		built <- err
	}()
	select {
	case <-asked:
	case err := <-built:
		t.Fatalf("the node did not wait for JetStream to answer: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the node did not say it was asking again")
	}
	c.Resume(1)
	c.Resume(2)
	select {
	case err := <-built:
		if err != nil {
			t.Fatalf("the node did not start once JetStream answered: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the node did not start once JetStream answered")
	}
}

// writerFunc is an io.Writer of a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
