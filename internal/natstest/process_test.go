package natstest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/internal/natstest"
)

// The processes place an R3 stream, name its consumers, and take a stopped
// or killed server back on its ports and store: it rejoins and catches up on
// what was stored while it was away.
func TestProcesses(t *testing.T) {
	c := natstest.MustProcesses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, s := mustStream(t, ctx, c.URLs())
	if _, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "reader", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if have := c.Consumers("T"); !slices.Equal(have, []string{"reader"}) {
		t.Fatalf("consumers of T: have %q, want [reader]", have)
	}
	if have := c.Consumers("other"); len(have) != 0 {
		t.Fatalf("consumers of a stream that does not exist: %q", have)
	}

	for _, away := range []struct {
		how  string
		stop func(int)
	}{{"stopped", c.Stop}, {"killed", c.Kill}} {
		away.stop(2)
		if c.Running(2) {
			t.Fatalf("server %s still running", away.how)
		}
		natstest.EventuallyWithin(t, time.Minute, "a publish with one server "+away.how, func() bool {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := js.Publish(pctx, "t.1", []byte("a"))
			return err == nil
		})
		c.Restart(2)
		natstest.EventuallyWithin(t, time.Minute, "the "+away.how+" server current with the stream once restarted", current(ctx, s))
	}
}
