package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/internal/natstest"
)

// The cluster places an R3 stream, keeps it writable with a server stopped,
// and takes the server back on its old port and store.
func TestCluster(t *testing.T) {
	c := natstest.MustCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	js, s := mustStream(t, ctx, c.URLs())
	if have := s.CachedInfo().Config.Replicas; have != 3 {
		t.Fatalf("replicas: have %d, want 3", have)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("a")); err != nil {
		t.Fatal(err)
	}

	c.Stop(1)
	natstest.Eventually(t, "a publish with one server stopped", func() bool {
		// Each try is short: one sent to the stopped server would otherwise
		// wait out the whole test's deadline while the others take over.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.Publish(pctx, "t.2", []byte("b"))
		return err == nil
	})

	c.Restart(1)
	natstest.Eventually(t, "the restarted server current with the stream", current(ctx, s))
}

// mustStream connects to urls and creates the R3 stream T on t.>.
func mustStream(t *testing.T, ctx context.Context, urls string) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

// current says whether both of the stream's followers are current.
func current(ctx context.Context, s jetstream.Stream) func() bool {
	return func() bool {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err := s.Info(ictx)
		if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	}
}
