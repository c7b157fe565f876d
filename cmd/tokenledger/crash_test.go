package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/jetstream"
	"tokenledger/natsapi"
	"tokenledger/projections"
)

// TestKillDuringWritesLosesNothingAcknowledged kills a node with SIGKILL while
// many writers create tokens, restarts it, and checks that every token whose
// creation was acknowledged validates, and that the table equals a rebuild
// from the stream.
func TestKillDuringWritesLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	node := cliServe(t, data)
	nc := node.connect(t, access.Operator, nats.NoReconnect())
	client := natsapi.NewClient(nc, "tokens")

	type acked struct{ account, name, secret string }
	var (
		mu    sync.Mutex
		acks  []acked
		count atomic.Int64
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			account := fmt.Sprintf("acct%d", w%4) // two writers share each account
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				name := fmt.Sprintf("w%d-%d", w, i)
				tok, err := client.Create(ctx, natsapi.CreateRequest{Account: account, Name: name})
				cancel()
				if err != nil {
					// Refused, timed out under load, or the node is gone:
					// the loop ends once the test closes stop after the kill.
					continue
				}
				mu.Lock()
				acks = append(acks, acked{account, name, tok.Token})
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for count.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	node.cmd.Process.Signal(syscall.SIGKILL)
	<-node.done
	close(stop)
	wg.Wait()
	nc.Close()
	if len(acks) < 200 {
		t.Fatalf("only %d creates acknowledged before the kill", len(acks))
	}
	t.Logf("%d creates acknowledged before SIGKILL", len(acks))

	node = cliServe(t, data)
	nc = node.connect(t, access.Operator)
	client = natsapi.NewClient(nc, "tokens")
	ctx := context.Background()
	for _, a := range acks {
		rep, err := client.Validate(ctx, a.secret, a.account)
		if err != nil || !rep.Valid || rep.Name != a.name {
			t.Fatalf("acknowledged token %s/%s after the crash: %+v, %v", a.account, a.name, rep, err)
		}
	}

	// The restarted node's table equals a rebuild straight from the stream.
	js, _ := natsjs.New(nc)
	stream, err := jetstream.Open(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := projections.AsOf(ctx, stream, "", time.Now().Add(time.Hour), projections.DefaultWarn, access.VerifySelfSigned)
	if err != nil {
		t.Fatal(err)
	}
	for w := range 4 {
		account := fmt.Sprintf("acct%d", w)
		have, err := client.List(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		want := natsapi.TokenInfos(rebuilt.List(account, time.Now()))
		if len(have) != len(want) {
			t.Fatalf("%s: node lists %d tokens, the stream rebuilds %d", account, len(have), len(want))
		}
		for i := range want {
			if have[i].Name != want[i].Name || have[i].TokenID != want[i].TokenID || have[i].CreateTime != want[i].CreateTime {
				t.Fatalf("%s row %d: node %+v, rebuild %+v", account, i, have[i], want[i])
			}
		}
	}
}
