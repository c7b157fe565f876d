package jetstream_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/jetstream"
)

func mustUsed(t *testing.T) (*jetstream.Used, natsjs.JetStream) {
	t.Helper()
	js, err := natsjs.New(natstest.MustConnect(t, natstest.MustServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	used, err := jetstream.OpenUsed(context.Background(), js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return used, js
}

// bucketWrites is how many values were ever written to the last-use bucket.
func bucketWrites(t *testing.T, js natsjs.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), "KV_TOKENS_USED")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// TestUsedOncePerPeriod: of many nodes recording the same token's use at
// once, one writes; within the period nobody writes again; after it, one does.
func TestUsedOncePerPeriod(t *testing.T) {
	used, js := mustUsed(t)
	ctx := context.Background()
	tokenID := events.NewID()
	t0 := time.UnixMilli(time.Now().UnixMilli())
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			u := events.LastUse{Account: "bob", TokenID: tokenID, At: t0.Add(time.Duration(i) * time.Second), IP: "192.0.2.1", Node: "n"}
			won, err := used.Record(ctx, u, 10*time.Minute)
			if err != nil {
				t.Error(err)
			}
			if won {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || bucketWrites(t, js) != 1 {
		t.Fatalf("%d recorders won, %d writes; want 1", wins.Load(), bucketWrites(t, js))
	}
	won, err := used.Record(ctx, events.LastUse{Account: "bob", TokenID: tokenID, At: t0.Add(9 * time.Minute)}, 10*time.Minute)
	if err != nil || won {
		t.Fatalf("within the period: won=%v err=%v", won, err)
	}
	later := t0.Add(30 * time.Minute)
	won, err = used.Record(ctx, events.LastUse{Account: "bob", TokenID: tokenID, At: later, IP: "::ffff:192.0.2.2", Node: "n2"}, 10*time.Minute)
	if err != nil || !won {
		t.Fatalf("after the period: won=%v err=%v", won, err)
	}
	u, rev, ok, err := used.Last(ctx, "bob", tokenID)
	want := events.LastUse{Account: "bob", TokenID: tokenID, At: later, IP: "::ffff:192.0.2.2", Node: "n2"}
	if err != nil || !ok || rev != 2 || !u.At.Equal(want.At) || u.IP != want.IP || u.Node != want.Node || u.Account != want.Account || u.TokenID != want.TokenID {
		t.Fatalf("last use %+v rev %d ok %v err %v; want %+v at revision 2", u, rev, ok, err, want)
	}
}

// TestUsedRefusesBadKeys: an account or token id that could change the
// subject never reaches NATS.
func TestUsedRefusesBadKeys(t *testing.T) {
	used, js := mustUsed(t)
	for _, tt := range []struct{ name, account, tokenID string }{
		{"dotted account", "bob.x", events.NewID()},
		{"wildcard account", "*", events.NewID()},
		{"upper-case account", "Bob", events.NewID()},
		{"dotted token id", "bob", "01J.>"},
		{"empty token id", "bob", ""},
	} {
		_, err := used.Record(context.Background(), events.LastUse{Account: tt.account, TokenID: tt.tokenID, At: time.Now()}, time.Minute)
		if events.ErrorCode(err) != events.Invalid {
			t.Errorf("%s: %v, want invalid", tt.name, err)
		}
	}
	if n := bucketWrites(t, js); n != 0 {
		t.Fatalf("%d writes", n)
	}
}

// TestUsedWatch: a watch gives the uses stored before it began, marked so,
// then each new one.
func TestUsedWatch(t *testing.T) {
	used, js := mustUsed(t)
	ctx, cancel := context.WithCancel(context.Background())
	before := events.LastUse{Account: "bob", TokenID: events.NewID(), At: time.UnixMilli(1_700_000_000_000), IP: "192.0.2.1"}
	if _, err := used.Record(ctx, before, time.Minute); err != nil {
		t.Fatal(err)
	}
	// A value no node writes is passed over.
	kv, err := js.KeyValue(ctx, "TOKENS_USED")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "bob."+events.NewID(), []byte(`{"at":"soon"}`)); err != nil {
		t.Fatal(err)
	}
	type seen struct {
		u      events.LastUse
		stored bool
	}
	got := make(chan seen, 8)
	done := make(chan error)
	go func() { done <- used.Watch(ctx, func(u events.LastUse, stored bool) { got <- seen{u, stored} }) }()
	next := func() seen {
		t.Helper()
		select {
		case s := <-got:
			return s
		case err := <-done:
			t.Fatalf("the watch ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("no update from the watch")
		}
		return seen{}
	}
	if s := next(); s.u.TokenID != before.TokenID || !s.stored || !s.u.At.Equal(before.At) || s.u.IP != before.IP {
		t.Fatalf("first: %+v", s)
	}
	after := events.LastUse{Account: "carol", TokenID: events.NewID(), At: time.UnixMilli(1_700_000_000_001), IP: "not an address"}
	if _, err := used.Record(ctx, after, time.Minute); err != nil {
		t.Fatal(err)
	}
	if s := next(); s.u.TokenID != after.TokenID || s.u.Account != "carol" || s.stored || s.u.IP != "" {
		t.Fatalf("second: %+v", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
