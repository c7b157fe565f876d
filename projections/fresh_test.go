package projections_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// stallable is the stream as a follower sees it, with the two ways a NATS
// server that stalls shows: questions go unanswered (LastSeq waits until
// its deadline), and events stop arriving (Follow holds them back).
type stallable struct {
	*jetstream.Stream
	mute atomic.Bool // LastSeq goes unanswered

	mu   sync.Mutex
	held chan struct{} // while not nil, Follow hands over nothing until it is closed
}

func (s *stallable) LastSeq(ctx context.Context, account string) (uint64, error) {
	if s.mute.Load() {
		<-ctx.Done()
		return 0, events.Errorf(events.Unavailable, "stalled: %v", ctx.Err())
	}
	return s.Stream.LastSeq(ctx, account)
}

func (s *stallable) Follow(ctx context.Context, after uint64, fn func(events.Msg)) error {
	return s.Stream.Follow(ctx, after, func(m events.Msg) {
		s.mu.Lock()
		held := s.held
		s.mu.Unlock()
		if held != nil {
			<-held
		}
		fn(m)
	})
}

// hold stops events from reaching the follower until release.
func (s *stallable) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

func (s *stallable) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

const maxStale = time.Second

// mustFollow runs a follower with MaxStaleness on src until the test ends,
// and waits until it is ready.
func mustFollow(t *testing.T, src projections.Source, trust *events.Trust) (*projections.Follower, *projections.Table) {
	t.Helper()
	table := projections.NewTable(projections.DefaultWarn)
	f := projections.NewFollower(table, src, trust, quiet)
	f.MaxStaleness = maxStale
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := f.WaitReady(wctx); err != nil {
		t.Fatalf("the follower never became ready: %v", err)
	}
	return f, table
}

// A table whose stream stops answering turns not ready once its latest proof
// of being current is older than MaxStaleness, says so through Lost (the
// `tokens` service leaves the queue group then), and is ready again once the
// stream answers.
func TestStaleWhenTheStreamStopsAnswering(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	src := &stallable{Stream: n.Stream}
	f, _ := mustFollow(t, src, n.Trust)
	if !f.Ready() || f.Staleness() >= maxStale {
		t.Fatalf("a follower just caught up: ready %v, staleness %v", f.Ready(), f.Staleness())
	}
	lost := f.Lost()

	src.mute.Store(true)
	select {
	case <-lost:
	case <-time.After(20 * time.Second):
		t.Fatal("still ready 20 s after its stream stopped answering")
	}
	if f.Ready() {
		t.Fatal("Lost is closed but Ready says ready")
	}
	if s := f.Staleness(); s < maxStale {
		t.Fatalf("staleness %v once stale, want at least %v", s, maxStale)
	}

	src.mute.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.WaitReady(ctx); err != nil {
		t.Fatalf("not ready again once the stream answered: %v", err)
	}
}

// A table that stops receiving events while the stream goes on storing them
// (a consumer on a server that stalled) cannot prove it is current: it turns
// not ready within MaxStaleness of the first event it misses, before anyone
// could be told "valid" for a token that event revoked, and ready once it
// has the event.
func TestStaleWhenEventsStopArriving(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	ctx := context.Background()
	op := events.Actor{Kind: events.ActorOperator, Name: "t"}
	tok, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "deploy", Actor: op})
	if err != nil {
		t.Fatal(err)
	}
	src := &stallable{Stream: n.Stream}
	t.Cleanup(src.release) // before the follower stops: see mustFollow
	f, table := mustFollow(t, src, n.Trust)
	if r := table.Validate(tok.Secret, "", time.Now()); !r.Valid {
		t.Fatalf("the follower does not know the token: %+v", r)
	}

	src.hold()
	lost := f.Lost()
	if err := n.Ledger.Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"deploy"}, Actor: op}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(20 * time.Second):
		t.Fatal("still ready 20 s after it stopped receiving the stream's events")
	}
	if r := table.Validate(tok.Secret, "", time.Now()); !r.Valid {
		t.Fatalf("the held-back revoke reached the table: %+v", r)
	}

	src.release()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := f.WaitReady(wctx); err != nil {
		t.Fatalf("not ready again once events arrived: %v", err)
	}
	if r := table.Validate(tok.Secret, "", time.Now()); r.Valid {
		t.Fatalf("ready again but the revoke is not applied: %+v", r)
	}
}
