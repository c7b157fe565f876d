package jetstream

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/natstest"
)

// readStream opens the ledger's stream through a connection to url.
func readStream(tb testing.TB, url string, replicas int) *Stream {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.CustomInboxPrefix("_INBOX_test"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := events.DefaultConfig()
	cfg.Replicas = replicas
	// A cluster that has just elected its meta leader may not answer the
	// first request in time on a loaded machine: asked again, as serve does.
	var s *Stream
	natstest.EventuallyWithin(tb, time.Minute, "the stream", func() bool {
		s, err = Ensure(context.Background(), js, cfg, Seen{})
		if err != nil && events.ErrorCode(err) != events.Unavailable {
			tb.Fatal(err)
		}
		return err == nil
	})
	return s
}

func revokedEvent(account, name string) events.Event {
	return events.Event{ID: events.NewID(), At: time.Now(), Account: account, TokenID: events.NewTokenID(),
		Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}, Data: events.TokenRevoked{Name: name}}
}

// fill stores n events of account interleaved with others events of other
// accounts after each, fast (no concurrency check), and returns the
// account's sequences.
func fill(tb testing.TB, s *Stream, account string, n, others int) []uint64 {
	tb.Helper()
	var acks []natsjs.PubAckFuture
	var mine []int
	for i := range n {
		for j := range others + 1 {
			acc := account
			if j > 0 {
				acc = fmt.Sprintf("%s-other%d", account, j)
			} else {
				mine = append(mine, len(acks))
			}
			e := revokedEvent(acc, fmt.Sprintf("n%d", i))
			b, err := events.Encode(e)
			if err != nil {
				tb.Fatal(err)
			}
			f, err := s.js.PublishAsync(s.cfg.Subject(acc, e.TokenID.String()), b)
			if err != nil {
				tb.Fatal(err)
			}
			acks = append(acks, f)
			if len(acks)%1000 == 0 {
				acked(tb, s)
			}
		}
	}
	acked(tb, s)
	seqs := make([]uint64, len(mine))
	for i, k := range mine {
		select {
		case ack := <-acks[k].Ok():
			seqs[i] = ack.Sequence
		case err := <-acks[k].Err():
			tb.Fatal(err)
		}
	}
	slices.Sort(seqs)
	return seqs
}

// acked waits until every asynchronous publish on s is acknowledged.
func acked(tb testing.TB, s *Stream) {
	tb.Helper()
	select {
	case <-s.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("publishes not acknowledged within a minute")
	}
}

// BenchmarkAccountRead compares the two ways to read one account from the
// start, as an account's first command does (a catch-up after a lost race
// reads the last few events, n=1): message gets from the stream's leader,
// and an ordered consumer made and deleted for the read. The account's
// events are one in ten of the stream's.
func BenchmarkAccountRead(b *testing.B) {
	for _, where := range []string{"server", "cluster"} {
		b.Run(where, func(b *testing.B) {
			var s *Stream
			if where == "server" {
				s = readStream(b, natstest.MustServer(b).ClientURL(), 1)
			} else {
				s = readStream(b, natstest.MustCluster(b).URLs(), 3)
			}
			for _, n := range []int{1, 10, 100, 1000} {
				account := fmt.Sprintf("acct%d", n)
				seqs := fill(b, s, account, n, 9)
				filter := s.cfg.AccountFilter(account)
				r := span{filter: filter, from: 1, last: seqs[len(seqs)-1]}
				for _, how := range []struct {
					name string
					read func(context.Context, span, func(events.Msg) error) error
				}{{"gets", s.getAll}, {"consumer", s.consume}} {
					b.Run(fmt.Sprintf("%s/n=%d", how.name, n), func(b *testing.B) {
						ctx := context.Background()
						for b.Loop() {
							got := 0
							if err := how.read(ctx, r, func(events.Msg) error { got++; return nil }); err != nil {
								b.Fatal(err)
							}
							if got != n {
								b.Fatalf("read %d events, want %d", got, n)
							}
						}
					})
				}
			}
		})
	}
}

// getAll is get with no limit.
func (s *Stream) getAll(ctx context.Context, r span, fn func(events.Msg) error) error {
	_, err := s.get(ctx, r, math.MaxInt, fn)
	return err
}

// stored is the sequence of the account's last event, which must be id.
func stored(ctx context.Context, s *Stream, account, id string) (uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, s.cfg.AccountFilter(account))
	if err != nil {
		return 0, err
	}
	if e, err := events.Decode(m.Data); err != nil || e.ID != id {
		return 0, fmt.Errorf("sequence %d of %s is not the event just appended (%v)", m.Sequence, account, err)
	}
	return m.Sequence, nil
}

// A read returns every event up to the last one stored when it began, of
// one account (by gets) or of the whole stream (by a consumer), while other
// events of the account and of others are being appended.
func TestReadReachesTheLastWhileAppending(t *testing.T) {
	s := readStream(t, natstest.MustServer(t).ClientURL(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const perWriter = 1000 // at most; they stop when the reads are done
	var (
		mu   sync.Mutex
		acks = map[string][]uint64{} // acknowledged sequences, by account ("" for all)
		wg   sync.WaitGroup
	)
	acked := func(account string) []uint64 {
		mu.Lock()
		defer mu.Unlock()
		seqs := slices.Clone(acks[account])
		slices.Sort(seqs) // the writers record theirs in turn, not in order
		return seqs
	}
	// recorded waits until every event up to seq is among the acknowledged:
	// each writer goes on past it, and records its own in order.
	recorded := func(seq uint64) {
		natstest.Eventually(t, fmt.Sprintf("both writers past sequence %d", seq), func() bool {
			for _, account := range []string{"bob", "carol"} {
				if seqs := acked(account); len(seqs) < perWriter && (len(seqs) == 0 || seqs[len(seqs)-1] < seq) {
					return false
				}
			}
			return true
		})
	}
	for _, account := range []string{"bob", "carol"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := 0; i < perWriter && ctx.Err() == nil; i++ {
				e := revokedEvent(account, fmt.Sprintf("n%d", i))
				seq, err := s.Append(ctx, account, last, []events.Event{e})
				if ctx.Err() != nil {
					return
				}
				if events.ErrorCode(err) == events.Conflict {
					// On a loaded machine an acknowledgement can come
					// late, and the retry then meets its own event.
					seq, err = stored(ctx, s, account, e.ID)
				}
				if err != nil {
					t.Error(err)
					return
				}
				last = seq
				mu.Lock()
				acks[account] = append(acks[account], seq)
				acks[""] = append(acks[""], seq)
				mu.Unlock()
			}
		}()
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()
	defer func() { cancel(); <-writing }()
	natstest.Eventually(t, "a few hundred events stored", func() bool { return len(acked("")) >= 300 })

	for round := range 6 {
		for _, opts := range []events.ReadOptions{
			{Account: "bob"},
			{Account: "carol", AfterSeq: uint64(round * 5)},
			{},
			{AfterSeq: uint64(round * 10)},
		} {
			before := acked(opts.Account)
			var got []uint64
			err := s.Read(ctx, opts, func(m events.Msg) error {
				if m.Err != nil {
					return m.Err
				}
				if opts.Account != "" && m.Event.Account != opts.Account {
					return fmt.Errorf("event of %s in a read of %s", m.Event.Account, opts.Account)
				}
				got = append(got, m.Seq)
				return nil
			})
			if err != nil {
				t.Fatalf("read %+v: %v", opts, err)
			}
			if len(got) > 0 {
				recorded(got[len(got)-1])
			}
			after := acked(opts.Account)
			// Every event acknowledged before the read began is there, in
			// order, and nothing between them is missing: what was read is
			// a run of what is stored, from just after AfterSeq.
			want := after[:0:0]
			for _, seq := range after {
				if seq > opts.AfterSeq && (len(got) == 0 || seq <= got[len(got)-1]) {
					want = append(want, seq)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("read %+v: %d events, want %d", opts, len(got), len(want))
			}
			for _, seq := range before {
				if seq > opts.AfterSeq && (len(got) == 0 || got[len(got)-1] < seq) {
					t.Fatalf("read %+v ended at %v, before sequence %d, acknowledged before the read began", opts, got[max(len(got)-1, 0):], seq)
				}
			}
		}
	}
}

// A read leaves no consumer on the server, whichever way it reads, and a
// read of one account makes none at all.
func TestReadLeavesNoConsumer(t *testing.T) {
	s := readStream(t, natstest.MustServer(t).ClientURL(), 1)
	ctx := context.Background()
	fill(t, s, "bob", 20, 3)
	consumers := func() int {
		info, err := s.stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	for _, opts := range []events.ReadOptions{{Account: "bob"}, {}, {Since: time.Now().Add(-time.Hour)}} {
		most := 0
		if err := s.Read(ctx, opts, func(events.Msg) error { most = max(most, consumers()); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 1}[opts.Account != ""]; most != want {
			t.Fatalf("read %+v: %d consumers during the read, want %d", opts, most, want)
		}
		if have := consumers(); have != 0 {
			t.Fatalf("read %+v left %d consumers", opts, have)
		}
	}
}

// A long account is read by gets up to maxGets, then by a consumer from
// where the gets stopped, without a gap or a repeat.
func TestReadOfALongAccount(t *testing.T) {
	s := readStream(t, natstest.MustServer(t).ClientURL(), 1)
	ctx := context.Background()
	want := fill(t, s, "bob", maxGets+50, 1)
	var got []uint64
	consumers := 0
	err := s.Read(ctx, events.ReadOptions{Account: "bob"}, func(m events.Msg) error {
		got = append(got, m.Seq)
		if len(got) == maxGets+1 {
			info, err := s.stream.Info(ctx)
			if err != nil {
				return err
			}
			consumers = info.State.Consumers
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %d events, want %d (first %v, last %v)", len(got), len(want), got[:min(len(got), 1)], got[max(len(got)-1, 0):])
	}
	if consumers != 1 {
		t.Fatalf("%d consumers after %d events, want 1", consumers, maxGets)
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("the read left %d consumers", info.State.Consumers)
	}
}

// On a cluster, a read made just after an append returns the appended
// event, though the read may be served by a copy that has not stored it yet:
// the copy that was not needed for the append's quorum, or one that has
// just rejoined after missing many events. (Before reads asked the leader
// where to end, about one read in twenty here ended short, its consumer on
// such a copy reporting nothing pending.)
func TestReadOnAClusterReachesTheLast(t *testing.T) {
	// Processes, not servers in this process: appends to a new stream
	// leader meet a race inside nats-server v2.15.2 that the race detector
	// would stop the test at (see commands' TestRefusalsAreCurrentAfterARejoin).
	c := natstest.MustProcesses(t)
	s := readStream(t, c.URL(0), 3) // a server that stays
	ctx := context.Background()
	fill(t, s, "bob", 10, 0)
	c.Stop(2)
	fill(t, s, "filler", 20000, 0) // for the rejoined server to catch up on
	c.Restart(2)
	for i := range 150 {
		last, err := s.LastSeq(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		seq, err := s.Append(ctx, "bob", last, []events.Event{revokedEvent("bob", fmt.Sprintf("n%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		reads := []events.ReadOptions{{Account: "bob", AfterSeq: last}}
		if i%3 == 0 {
			reads = append(reads, events.ReadOptions{AfterSeq: seq - 1}) // by a consumer, which costs more
		}
		for _, opts := range reads {
			var got []uint64
			if err := s.Read(ctx, opts, func(m events.Msg) error { got = append(got, m.Seq); return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []uint64{seq}) {
				t.Fatalf("append %d: read %+v returned %v, want [%d]", i, opts, got, seq)
			}
		}
	}
}
