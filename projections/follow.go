package projections

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"tokenledger/events"
	"tokenledger/internal/retry"
)

// Source is what the read side needs of the event stream (*jetstream.Stream).
type Source interface {
	Follow(ctx context.Context, after uint64, fn func(events.Msg)) error
	LastSeq(ctx context.Context, account string) (uint64, error)
	Read(ctx context.Context, opts events.ReadOptions, fn func(events.Msg) error) error
}

// Follower keeps a Table in step with the stream and says when it has caught
// up with what the stream held when it started, or, after Behind, when the
// node's connection came back. With MaxStaleness it is ready only while it
// can also vouch that the table is current (see fresh.go). A Halt, while the
// stream is not the history the node followed (see Guard), overrides all of
// that until Resume.
type Follower struct {
	// StartGC, when above zero, is the garbage collector's percentage
	// (GOGC) while a catch-up replays the stream: the first, or one after
	// following failed or was halted; see CatchUpGC.
	StartGC int
	// MaxStaleness, when above zero, is how old the table's latest proof
	// of holding every stored event may be while the follower says it is
	// ready; Run then looks for such proofs (see vouch). Zero: caught up
	// is enough, as for a table no one answers from.
	MaxStaleness time.Duration
	// Origin, when set, proves the table current instead of the followed
	// stream (see Origin); nil: the followed stream does.
	Origin Origin

	table *Table
	src   Source
	trust *events.Trust
	log   *slog.Logger
	// ready is caught up, fresh when last looked at, and not halted (see
	// update). Ready looks at the freshness again on every call.
	ready atomic.Bool
	// proof is the moment of the latest proof that the table held every
	// event stored; nil before the first. See vouch.
	proof atomic.Pointer[time.Time]
	made  time.Time     // when NewFollower made it, for Staleness before any proof
	kick  chan struct{} // asks vouch for a proof at once: it has room for one
	// unsettled holds the tips of a catch-up that was cut short, whose
	// signatures a later one checks before the table is ready. Only Run's
	// goroutine uses it.
	unsettled map[string]tip
	failed    chan error // see Failed

	mu       sync.Mutex
	gen      uint64 // counts Behind and Halt calls: a catch-up begun before the latest does not count
	caughtUp bool   // the table has caught up since the latest Behind or Halt
	// stale is whether update last found the table's proof too old, for
	// the log's sake.
	stale   bool
	up      chan struct{} // closed while ready
	down    chan struct{} // closed while not ready
	halt    string        // why the follower is halted; "" when it is not
	resumed chan struct{} // closed while not halted
	stop    func()        // ends the current following, for Halt
}

// CatchUpGC is the GOGC a node runs its first catch-up with. Replaying the
// stream makes garbage at a great rate while the table grows, and at the
// default (100) the collector marks the growing table again each time the
// heap doubles. At 400 it does so a quarter as often: a rebuild of 300,000
// tokens took a quarter less CPU. The price is a higher peak of memory while
// starting (GOMEMLIMIT still bounds it).
const CatchUpGC = 400

// NewFollower returns a follower that feeds table from src with the events
// that trust's keys signed.
func NewFollower(table *Table, src Source, trust *events.Trust, log *slog.Logger) *Follower {
	down, resumed := make(chan struct{}), make(chan struct{})
	close(down)
	close(resumed)
	return &Follower{table: table, src: src, trust: trust, log: log, up: make(chan struct{}), down: down,
		resumed: resumed, failed: make(chan error, 1), made: time.Now(), kick: make(chan struct{}, 1), stale: true}
}

// Ready says whether the table has caught up with the stream, the follower
// is not halted, and, with MaxStaleness, the table's latest proof of being
// current is younger than that. It is two atomic loads and a clock reading,
// for every request to call before it answers from the table: a process
// that wakes from a freeze finds its proof old before any timer has fired.
func (f *Follower) Ready() bool { return f.ready.Load() && f.fresh(time.Now()) }

// followWait bounds the wait before following the stream again after it
// failed: it starts at a tenth of it and doubles while following fails
// again at once (the stream has no leader yet, say), and starts over once
// following has lasted longer than followWait.
const followWait = 5 * time.Second

// Run applies every event after the table's last sequence, then each new one,
// until ctx ends. Should following fail (the connection lost, the consumer's
// server gone: see jetstream.Stream.Follow), the table falls Behind, Failed says
// so, and Run follows again from where the table is, soon. While halted it does
// not follow at all, and once resumed it catches up before it is ready.
func (f *Follower) Run(ctx context.Context) error {
	if f.MaxStaleness > 0 {
		var vouching sync.WaitGroup
		vouching.Add(1)
		go func() { defer vouching.Done(); f.vouch(ctx) }()
		defer vouching.Wait()
	}
	wait := followWait / 10
	for {
		f.mu.Lock()
		if f.halt != "" {
			resumed := f.resumed
			f.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil
			case <-resumed:
			}
			continue
		}
		fctx, stop := context.WithCancel(ctx)
		f.stop = stop
		f.mu.Unlock()
		began := time.Now()
		err := f.follow(fctx)
		halted := fctx.Err() != nil // before stop, which ends fctx too
		stop()
		if time.Since(began) > followWait { // it followed: a new failure, not the last one again
			wait = followWait / 10
		}
		if ctx.Err() != nil {
			return nil
		}
		if halted {
			continue
		}
		if err == nil {
			err = errors.New("following stopped")
		}
		f.Behind()
		f.log.Warn("following the stream failed: not answering until it follows again and has caught up", "err", err)
		select {
		case f.failed <- err:
		default:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, followWait)
	}
}

// Failed receives when following the stream failed, so that the Guard
// looks at the stream at once. It has room for one failure, for one reader.
func (f *Follower) Failed() <-chan error { return f.failed }

// follow is one run of following the stream: it catches up with the stream,
// marks the table ready (unless it fell Behind or was halted since), and
// goes on until ctx ends or the stream's consumer fails.
func (f *Follower) follow(ctx context.Context) error {
	gen := f.generation()
	target, err := f.src.LastSeq(ctx, "")
	if err != nil {
		return err
	}
	// The first catch-up is a pipeline: while one goroutine takes messages
	// off the consumer, another decodes and applies the batches before, and
	// checks chains as it goes, but signatures only at the end, one per
	// account: the newest event of each account's chain (see settle). Once
	// ready, each message is verified and applied as it comes: under a
	// steady load something is nearly always pending, and a writer waits
	// for its own event.
	var first *catchUp
	if f.table.Applied() < target {
		first = f.startCatchUp()
		if f.StartGC > 0 {
			first.restoreGC = debug.SetGCPercent(f.StartGC)
		}
	} else {
		f.settle(ctx, f.unsettled, f.table.Applied())
		f.unsettled = nil
		f.setReady(gen, target)
	}
	batch := make([]events.Msg, 0, maxBatch)
	err = f.src.Follow(ctx, f.table.Applied(), func(m events.Msg) {
		batch = append(batch, m)
		if first != nil {
			last := m.Seq >= target || m.Pending == 0
			if len(batch) < maxBatch && !last {
				return
			}
			first.batches <- batch
			batch = first.emptyBatch()
			if last {
				tips := f.withUnsettled(first.finish())
				first = nil
				f.settle(ctx, tips, m.Seq)
				f.setReady(gen, m.Seq)
			}
			return
		}
		if !f.ready.Load() && len(batch) < maxBatch && m.Pending > 0 {
			return
		}
		parallel(len(batch), func(i int) { batch[i].Decode() })
		f.applyBatch(batch)
		batch = batch[:0]
	})
	if first != nil {
		// Cut short: what it applied waits for the next catch-up's check.
		f.unsettled = f.withUnsettled(first.finish())
	}
	return err
}

// withUnsettled adds to tips those of a catch-up cut short before, unless
// tips has a newer one of the account, whose signature vouches for it.
func (f *Follower) withUnsettled(tips map[string]tip) map[string]tip {
	for account, t := range f.unsettled {
		if _, newer := tips[account]; !newer {
			tips[account] = t
		}
	}
	f.unsettled = nil
	return tips
}

// catchUp decodes and applies batches of the first catch-up in order, on a
// goroutine of its own.
type catchUp struct {
	batches chan []events.Msg
	// free takes back the batches applied, to be filled again: a batch is
	// 512 messages of some 300 bytes, and making one for each would make
	// the collector work at every few batches.
	free chan []events.Msg
	done chan struct{}
	tips map[string]tip // each account's newest applied event
	once sync.Once
	// restoreGC is the GOGC to go back to once caught up; 0 when unchanged.
	restoreGC int
}

func (f *Follower) startCatchUp() *catchUp {
	c := &catchUp{batches: make(chan []events.Msg, 4), free: make(chan []events.Msg, 8), done: make(chan struct{}), tips: make(map[string]tip)}
	go func() {
		defer close(c.done)
		for batch := range c.batches {
			parallel(len(batch), func(i int) { batch[i].DecodeForTable() })
			f.applyUnverified(batch, c.tips)
			select {
			case c.free <- batch[:0]:
			default:
			}
		}
	}()
	return c
}

// emptyBatch is a batch applied before, or a new one.
func (c *catchUp) emptyBatch() []events.Msg {
	select {
	case b := <-c.free:
		return b
	default:
		return make([]events.Msg, 0, maxBatch)
	}
}

// finish waits until every batch sent is applied, and returns the tips.
func (c *catchUp) finish() map[string]tip {
	c.once.Do(func() {
		close(c.batches)
		<-c.done
		if c.restoreGC != 0 {
			debug.SetGCPercent(c.restoreGC)
		}
	})
	<-c.done
	return c.tips
}

// tip is an account's newest applied event, as stored. Its signature,
// checked by settle, vouches for the chain behind it.
type tip struct {
	seq uint64
	raw []byte
}

// applyUnverified applies ms in stream order where each continues its
// account's chain, and keeps each account's tip. The messages may be
// decoded for the table, without what a signature check needs.
func (f *Follower) applyUnverified(ms []events.Msg, tips map[string]tip) {
	for _, m := range ms {
		err := m.Err
		if err == nil {
			err = f.table.Apply(m.Seq, m.Event, m.Digest)
		} else {
			f.table.Skip(m.Seq)
		}
		if err != nil {
			f.log.Error("ALERT: event ignored", "seq", m.Seq, "reason", err)
			continue
		}
		tips[m.Event.Account] = tip{m.Seq, m.Raw}
	}
}

// settle checks the signature of each account's newest applied event, on
// every core. A trusted node signs an event only on top of a chain it has
// verified, and each event holds the digest of the one before, so a good
// signature on the newest event vouches for every event behind it. An
// account whose newest event does not verify is built again from the
// stream, checking every signature.
func (f *Follower) settle(ctx context.Context, tips map[string]tip, upto uint64) {
	ms := make([]events.Msg, 0, len(tips))
	for _, t := range tips {
		ms = append(ms, events.Msg{Seq: t.seq, Raw: t.raw})
	}
	parallel(len(ms), func(i int) { ms[i].Decode() }) // whole, for the signature
	errs := f.verifyAll(ms)
	for i, m := range ms {
		if errs[i] != nil {
			f.log.Error("ALERT: an account's newest event does not verify; checking its every event", "account", m.Event.Account, "seq", m.Seq, "reason", errs[i])
			f.rebuildAccount(ctx, m.Event.Account, upto)
		}
	}
}

// rebuildAccount builds one account again from its events up to upto,
// verifying each.
func (f *Follower) rebuildAccount(ctx context.Context, account string, upto uint64) {
	f.table.resetAccount(account)
	err := f.src.Read(ctx, events.ReadOptions{Account: account}, func(m events.Msg) error {
		if m.Seq > upto {
			return errDone{}
		}
		err := m.Err
		if err == nil {
			err = f.trust.Verify(m.Raw, m.Event)
		}
		if err == nil {
			err = f.table.Apply(m.Seq, m.Event, m.Digest)
		}
		if err != nil {
			f.log.Error("ALERT: event ignored", "seq", m.Seq, "reason", err)
		}
		return nil
	})
	if _, done := err.(errDone); err != nil && !done {
		f.log.Error("account not rebuilt", "account", account, "err", err)
	}
}

// maxBatch is how many messages are verified together while catching up.
const maxBatch = 512

// applyBatch verifies ms, then applies them in stream order.
func (f *Follower) applyBatch(ms []events.Msg) {
	errs := f.verifyAll(ms)
	for i, m := range ms {
		err := errs[i]
		if err != nil {
			f.table.Skip(m.Seq)
		} else {
			err = f.table.Apply(m.Seq, m.Event, m.Digest)
		}
		if err != nil {
			// Someone wrote to the stream who should not have: an alert.
			f.log.Error("ALERT: event ignored", "seq", m.Seq, "reason", err)
		}
	}
}

// verifyAll checks each message's signature, on every core when there are
// many; a message whose bytes this node signed itself needs no check.
func (f *Follower) verifyAll(ms []events.Msg) []error {
	errs := make([]error, len(ms))
	parallel(len(ms), func(i int) {
		errs[i] = ms[i].Err
		if errs[i] == nil && !f.table.vouchedFor(ms[i].Digest) {
			errs[i] = f.trust.Verify(ms[i].Raw, ms[i].Event)
		}
	})
	return errs
}

// parallel calls fn for 0 to n-1, on every core when n is large enough to
// pay for the goroutines.
func parallel(n int, fn func(int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+31)/32)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func (f *Follower) generation() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

// setReady marks the table caught up, unless it fell Behind or was halted
// since gen; it is ready once it is also fresh.
func (f *Follower) setReady(gen, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen || f.caughtUp || f.halt != "" {
		return
	}
	f.caughtUp = true
	f.log.Info("projections caught up", "seq", seq)
	f.update()
	select { // a proof now, rather than at vouch's next round
	case f.kick <- struct{}{}:
	default:
	}
}

// update makes ready, up and down say whether the table is caught up, fresh
// and not halted; the caller holds mu.
func (f *Follower) update() {
	fresh := f.fresh(time.Now())
	if fresh == f.stale && f.MaxStaleness > 0 {
		f.stale = !fresh
		if f.stale {
			f.log.Warn("the table may be stale: no proof within --max-staleness that it holds every stored event; not answering until there is",
				"max_staleness", f.MaxStaleness, "staleness", f.Staleness().Round(time.Millisecond))
		} else {
			f.log.Info("the table is proven current", "max_staleness", f.MaxStaleness)
		}
	}
	ready := f.caughtUp && f.halt == "" && fresh
	if ready == f.ready.Load() {
		return
	}
	f.ready.Store(ready)
	if ready {
		close(f.up)
		f.down = make(chan struct{})
	} else {
		close(f.down)
		f.up = make(chan struct{})
	}
}

// Behind says the table may have fallen behind the stream (the node lost its
// NATS connection, or following failed): it is not ready until it has caught
// up again, so that a node never answers from a table that misses a revoke
// stored meanwhile.
func (f *Follower) Behind() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notReady()
}

// notReady ends readiness until a later catch-up; the caller holds mu.
func (f *Follower) notReady() {
	f.gen++
	f.caughtUp = false
	f.update()
}

// Halt stops the table from being ready, and stops following the stream,
// until Resume, whatever catches up meanwhile: the stream is not the history
// the node followed (missing, changed so that it could lose events, or
// missing events), and answering from either would mislead. reason says
// what is wrong, for Halted.
func (f *Follower) Halt(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.halt == "" {
		f.resumed = make(chan struct{})
	}
	f.halt = reason
	f.notReady()
	if f.stop != nil {
		f.stop()
	}
}

// Resume ends a Halt: the follower follows the stream again from where the
// table is, and is ready once it has caught up.
func (f *Follower) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.halt == "" {
		return
	}
	f.halt = ""
	close(f.resumed)
}

// Halted is why the follower is halted, for /readyz and metrics; "" when it
// is not.
func (f *Follower) Halted() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.halt
}

// CatchUp waits until the table holds every event the stream holds now and
// marks it ready again, unless it fell Behind once more meanwhile. It asks the
// stream until it answers or ctx ends.
func (f *Follower) CatchUp(ctx context.Context) error {
	gen := f.generation()
	p := catchUpAsk
	p.Notify = func(err error) { f.log.Warn("catching up: the stream does not answer yet", "err", err) }
	target, err := retry.Do(ctx, p, func(ctx context.Context) (uint64, error) { return f.src.LastSeq(ctx, "") })
	if err != nil {
		return err
	}
	if err := f.table.WaitApplied(ctx, target); err != nil {
		return err
	}
	f.setReady(gen, target)
	return nil
}

// catchUpAsk is how CatchUp asks the stream for its last sequence: just
// after a server is lost a request may go unanswered, so each attempt is
// short and asked again at once; a refusal is asked again after a pause
// that grows, until the caller's context ends.
var catchUpAsk = retry.Policy{Attempt: 2 * time.Second, Pause: 100 * time.Millisecond, MaxPause: 5 * time.Second,
	Again: func(error) bool { return true }}

// WaitReady blocks until the follower is ready (see Ready) or ctx ends.
func (f *Follower) WaitReady(ctx context.Context) error {
	f.mu.Lock()
	up := f.up
	f.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lost returns a channel that is closed when the follower stops being ready
// (it fell Behind, was halted, or its proof of being current grew older
// than MaxStaleness): what answers from the table stops then, and waits for
// WaitReady again.
func (f *Follower) Lost() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}
