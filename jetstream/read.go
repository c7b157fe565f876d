package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/internal/retry"
)

// Read calls fn for each event that matches opts, oldest first, up to the
// account's (or the stream's) last event at the moment Read began, as the
// stream's leader says; events stored later may or may not be included.
// It never ends short: it returns nil once fn has had that last event (or
// when nothing matches), fn's error as it is, and otherwise an error, an
// Unavailable one when JetStream cannot take the read that far. A consumer
// that says nothing is pending is not taken for the end, since one on a
// server still catching up after a restart says so too.
//
// A read of one account asks the leader for each event in turn (see get)
// and leaves nothing on the server, up to maxGets events; Msg.Pending is
// then not counted, but 1 before the read's last event and 0 on it. A read
// of the whole stream, and the rest of a long account's, uses an ordered
// consumer that it deletes when done.
func (s *Stream) Read(ctx context.Context, opts events.ReadOptions, fn func(events.Msg) error) error {
	filter := s.cfg.AllFilter()
	if opts.Account != "" {
		filter = s.cfg.AccountFilter(opts.Account)
	}
	last, lastAt, err := s.last(ctx, filter)
	if err != nil || last <= opts.AfterSeq || !opts.Since.IsZero() && lastAt.Before(opts.Since) {
		return err
	}
	r := span{filter: filter, from: opts.AfterSeq + 1, last: last, since: opts.Since}
	if opts.Account != "" {
		done, err := s.get(ctx, r, maxGets, fn)
		if err != nil || done >= r.last {
			return err
		}
		r.from = done + 1 // a long account: the rest by a consumer
	}
	return s.consume(ctx, r, fn)
}

// span is what one read covers: the events on filter from sequence from to
// last, both included, stored at or after since.
type span struct {
	filter     string
	from, last uint64
	since      time.Time
}

// skip says whether m is outside the span, being stored before since.
func (r span) skip(m events.Msg) bool { return m.Stored.Before(r.since) }

// short is the error of a read that has given fn every event up to done
// but cannot go on to r.last because of err: the caller's own end (a
// cancelled context) as it is, a coded error as it is, anything else
// Unavailable.
func (r span) short(done uint64, err error) error {
	if errors.Is(err, context.Canceled) || events.ErrorCode(err) != events.Internal {
		return err
	}
	return fmt.Errorf("%w: %w", events.Errorf(events.Unavailable, "JetStream could not be read to the end: read up to sequence %d of %d on %s", done, r.last, r.filter), err)
}

// Follow calls fn for every event after sequence after, then goes on with each
// new one as it is stored, until ctx ends or the consumer is in trouble. The
// messages come undecoded, so that the caller can decode many at once: see
// events.Msg.Decode. fn is called on one goroutine at a time, and never once Follow
// has returned.
//
// Follow returns an error at the first sign that its consumer may have lost
// its way: the connection lost, heartbeats missed (the consumer's server
// gone or stalled), the consumer deleted, a message missing. The caller
// follows again from where its table is, soon (projections.Follower.Run).
// It does not leave that to nats.go's ordered consumer, which recreates
// itself with up to ten seconds of waiting for each attempt, a pause of one
// second doubling between attempts, and its lock held throughout: while a
// cluster chooses a new stream leader no attempt is answered, and a node
// stood still for 10 to 33 s after losing its server. Follow makes its
// consumer with a request of at most two seconds, which fails at once while
// the stream has no leader; a caller that asks again every second or so
// follows again within moments of the new leader. The consumer is a plain
// one without acknowledgements, in memory, on one server: what the ordered
// consumer makes, with the order checked here.
//
// Follow takes messages with the consumer's callback (Consume) rather than
// its iterator, which starts and stops a heartbeat timer for every message
// and hands each over through a channel. A rebuild of 300,000 tokens ran at
// 0.64 to 0.68 of the rate of a bare read by the iterator when it used the
// iterator too, and at 0.93 of it with the callback.
func (s *Stream) Follow(ctx context.Context, after uint64, fn func(events.Msg)) error {
	cc := natsjs.ConsumerConfig{Name: followNamePrefix + events.NewID(), FilterSubject: s.cfg.AllFilter(),
		DeliverPolicy: natsjs.DeliverAllPolicy, AckPolicy: natsjs.AckNonePolicy,
		InactiveThreshold: followInactive, Replicas: 1, MemoryStorage: true}
	if after > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = natsjs.DeliverByStartSequencePolicy, after+1
	}
	actx, cancel := context.WithTimeout(ctx, apiWait)
	cons, err := s.stream.CreateConsumer(actx, cc)
	cancel()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return natsError(err)
	}
	nc := s.js.Conn()
	// The consumer goes when Follow does, unless the connection is down
	// (the caller should not wait for it to come back) or the deletion is
	// not answered: followInactive removes it then.
	defer func() {
		if nc.IsConnected() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.stream.DeleteConsumer(dctx, cc.Name)
		}
	}()
	status := nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer nc.RemoveStatusListener(status)
	var (
		mu        sync.Mutex
		stopped   bool
		delivered uint64 // the consumer's sequence of the last message taken
		failed    = make(chan error, 1)
	)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	take := func(jm natsjs.Msg) {
		md, err := jm.Metadata()
		if err != nil {
			fail(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if md.Sequence.Consumer != delivered+1 {
			stopped = true // nothing after a gap: the caller follows again from its table
			fail(events.Errorf(events.Unavailable, "the stream's consumer skipped from message %d to %d", delivered, md.Sequence.Consumer))
			return
		}
		delivered = md.Sequence.Consumer
		fn(events.Msg{Seq: md.Sequence.Stream, Stored: md.Timestamp, Pending: md.NumPending, Raw: jm.Data()})
	}
	// Heartbeats a second apart: a consumer lost with its server shows as
	// two missed, within two seconds rather than half a minute.
	sub, err := cons.Consume(take, natsjs.PullMaxMessages(1024), natsjs.PullExpiry(5*time.Second), natsjs.PullHeartbeat(time.Second),
		natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) { fail(err) }))
	if err != nil {
		return natsError(err)
	}
	select {
	case <-ctx.Done():
	case err = <-failed:
	case st := <-status:
		err = events.Errorf(events.Unavailable, "the NATS connection is %v", st)
	case <-sub.Closed():
		err = errors.New("the stream's consumer stopped")
	}
	sub.Stop()
	mu.Lock()
	stopped = true
	mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	return natsError(err)
}

// followNamePrefix starts the name of a follower's consumer, so that an
// operator can tell it in `nats consumer ls`; a fresh ULID follows it.
const followNamePrefix = "tokenledger_follow_"

// followInactive is how long the server keeps a follower's consumer whose
// client went away without deleting it (a killed process, a lost server).
// A live follower pulls every few seconds; one whose process stood still
// longer finds its consumer gone, and follows again.
const followInactive = 30 * time.Second

// LastSeq is the sequence of the newest event of account, or of the whole
// stream when account is empty; 0 when there is none. The stream's leader
// answers, so that a caller that has read up to it knows it holds every
// event stored before it asked.
func (s *Stream) LastSeq(ctx context.Context, account string) (uint64, error) {
	filter := s.cfg.AllFilter()
	if account != "" {
		filter = s.cfg.AccountFilter(account)
	}
	seq, _, err := s.last(ctx, filter)
	return seq, err
}

// last is the sequence of the newest event on filter and when it was stored;
// 0 when there is none. Both requests are answered by the stream's leader
// (the stream does not allow direct gets, which any copy answers).
func (s *Stream) last(ctx context.Context, filter string) (uint64, time.Time, error) {
	if filter == s.cfg.AllFilter() {
		info, err := retry.Do(ctx, apiRead, func(ctx context.Context) (*natsjs.StreamInfo, error) { return s.stream.Info(ctx) })
		if err != nil {
			return 0, time.Time{}, lastError(filter, err)
		}
		return info.State.LastSeq, info.State.LastTime, nil
	}
	m, err := retry.Do(ctx, apiRead, func(ctx context.Context) (*natsjs.RawStreamMsg, error) {
		return s.stream.GetLastMsgForSubject(ctx, filter)
	})
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, lastError(filter, err)
	}
	return m.Sequence, m.Time, nil
}

// lastError says that the end of filter could not be learnt: Unavailable,
// whatever JetStream answered instead (no leader, a timeout, ...).
func lastError(filter string, err error) error {
	err = natsError(err)
	if errors.Is(err, context.Canceled) || events.ErrorCode(err) != events.Internal {
		return err
	}
	return fmt.Errorf("%w: %w", events.Errorf(events.Unavailable, "JetStream did not say where %s ends", filter), err)
}

// apiWait bounds one JetStream API request. Just after a server is lost a
// request may go unanswered; asking again soon beats waiting out the
// caller's deadline.
const apiWait = 2 * time.Second

// apiRead is how a read of the stream's state or of one message is asked:
// again at once each time it goes unanswered for apiWait, until it is
// answered or the caller's context ends. An answer, even a refusal, is
// returned as it is: only silence is worth asking again, since a read
// changes nothing.
var apiRead = retry.Policy{Attempt: apiWait}

// consume reads r with an ordered consumer, handing each message to fn
// decoded, until it has handed over r.last. The consumer is deleted when
// consume returns, however it returns: nats.go leaves a stopped ordered
// consumer on the server, and every audit would otherwise leave one behind
// for minutes.
//
// It stops only at r.last (or past it), never because the consumer reports
// nothing pending: a consumer placed on a server that is still catching up
// says so before it has delivered everything. Should no message come for
// readStall, the read gives up as Unavailable rather than end short.
func (s *Stream) consume(ctx context.Context, r span, fn func(events.Msg) error) error {
	cc := natsjs.OrderedConsumerConfig{
		FilterSubjects:    []string{r.filter},
		NamePrefix:        readNamePrefix + events.NewID(),
		InactiveThreshold: readInactive,
	}
	switch {
	case r.from > 1:
		cc.DeliverPolicy, cc.OptStartSeq = natsjs.DeliverByStartSequencePolicy, r.from
	case !r.since.IsZero():
		since := r.since
		cc.DeliverPolicy, cc.OptStartTime = natsjs.DeliverByStartTimePolicy, &since
	}
	done := r.from - 1 // the last sequence handed over, or skipped
	cons, err := s.stream.OrderedConsumer(ctx, cc)
	if err != nil {
		return r.short(done, natsError(err))
	}
	defer s.deleteConsumer(cons)
	// A consumer lost with its server shows as missed heartbeats: a second
	// apart, a follower notices within seconds rather than half a minute.
	// nats.go then recreates it, each attempt waiting up to 10 s, with a
	// backoff of 1 s doubling between attempts; while a cluster chooses a
	// new leader the table can so lag 10 to 20 s (see the README's limits).
	it, err := cons.Messages(natsjs.PullMaxMessages(1024), natsjs.PullExpiry(5*time.Second), natsjs.PullHeartbeat(time.Second))
	if err != nil {
		return r.short(done, natsError(err))
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		jm, err := it.Next(natsjs.NextMaxWait(readStall))
		switch {
		case ctx.Err() != nil:
			return r.short(done, natsError(ctx.Err()))
		case errors.Is(err, nats.ErrTimeout):
			return r.short(done, fmt.Errorf("no event came for %v", readStall))
		case err != nil:
			return r.short(done, natsError(err))
		}
		md, err := jm.Metadata()
		if err != nil {
			return r.short(done, err)
		}
		if md.Sequence.Stream > r.last {
			return nil // r.last was handed over already; cannot happen on a stream without deletes
		}
		m := events.Msg{Seq: md.Sequence.Stream, Stored: md.Timestamp, Pending: md.NumPending, Raw: jm.Data()}
		if !r.skip(m) {
			m.Decode()
			if err := fn(m); err != nil {
				return err
			}
		}
		if done = m.Seq; done >= r.last {
			return nil
		}
	}
}

// readStall is how long a read waits for its next event before it gives up
// as Unavailable: longer than nats.go takes to recreate a consumer lost with
// its server (a few seconds), and than a server that restarted takes to
// catch up on a busy stream.
const readStall = 30 * time.Second

// readNamePrefix starts the name of each read's consumer, so that an
// operator can tell them in `nats consumer ls`; a fresh ULID follows it, so
// that concurrent reads never share a consumer (nats.go names an ordered
// consumer's incarnations prefix_1, prefix_2, ...).
const readNamePrefix = "tokenledger_read_"

// readInactive is how long the server keeps a read's consumer whose client
// went away without deleting it (a killed process): a backstop to
// deleteConsumer, well under nats.go's default of five minutes. A live read
// pulls every few seconds; one whose caller stalls longer (history piped to
// a pager) finds its consumer gone, and nats.go makes it again where the
// read left off, as after a lost server.
const readInactive = 30 * time.Second

// deleteConsumer deletes the ordered consumer's current incarnation (nats.go
// deletes the earlier ones when it replaces them). It runs after the read's
// context may have ended, so it has a short deadline of its own; should it
// fail, readInactive still removes the consumer.
func (s *Stream) deleteConsumer(cons natsjs.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return // never created
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiWait)
	defer cancel()
	_ = s.stream.DeleteConsumer(ctx, info.Name)
}
