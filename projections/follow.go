package projections

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"tokenledger/events"
)

// Source is what the read side needs of the event stream (*events.Stream).
type Source interface {
	Follow(ctx context.Context, after uint64, fn func(events.Msg)) error
	LastSeq(ctx context.Context, account string) (uint64, error)
}

// Follower keeps a Table in step with the stream and says when it has caught
// up with what the stream held when it started, or, after Behind, when the
// node's connection came back.
type Follower struct {
	table *Table
	src   Source
	trust *events.Trust
	log   *slog.Logger
	ready atomic.Bool
	once  sync.Once

	mu   sync.Mutex
	gen  uint64        // counts Behind calls: a catch-up begun before the latest loss does not count
	up   chan struct{} // closed while ready
	down chan struct{} // closed while not ready
}

// NewFollower returns a follower that feeds table from src with the events
// that trust's keys signed.
func NewFollower(table *Table, src Source, trust *events.Trust, log *slog.Logger) *Follower {
	down := make(chan struct{})
	close(down)
	return &Follower{table: table, src: src, trust: trust, log: log, up: make(chan struct{}), down: down}
}

// Ready says whether the table has caught up with the stream.
func (f *Follower) Ready() bool { return f.ready.Load() }

// Run applies every event after the table's last sequence, then each new one,
// until ctx ends. The consumer resumes by itself after a lost connection.
func (f *Follower) Run(ctx context.Context) error {
	gen := f.generation()
	target, err := f.src.LastSeq(ctx, "")
	if err != nil {
		return err
	}
	if f.table.Applied() >= target {
		f.markReady(gen, target)
	}
	// While catching up, messages are verified in batches on every core
	// (a signature check costs far more than applying an event). Once ready,
	// each message is applied as it comes: under a steady load something is
	// nearly always pending, and a writer waits for its own event.
	batch := make([]events.Msg, 0, maxBatch)
	return f.src.Follow(ctx, f.table.Applied(), func(m events.Msg) {
		batch = append(batch, m)
		if !f.ready.Load() && len(batch) < maxBatch && m.Pending > 0 {
			return
		}
		f.applyBatch(batch)
		batch = batch[:0]
		if !f.ready.Load() && (m.Seq >= target || m.Pending == 0) {
			f.markReady(gen, m.Seq)
		}
	})
}

// maxBatch is how many messages are verified together while catching up.
const maxBatch = 512

// applyBatch verifies ms in parallel, then applies them in stream order.
func (f *Follower) applyBatch(ms []events.Msg) {
	errs := make([]error, len(ms))
	verify := func(w, workers int) {
		for i := w; i < len(ms); i += workers {
			errs[i] = ms[i].Err
			if errs[i] == nil && !f.table.vouchedFor(events.Digest(ms[i].Raw)) {
				errs[i] = f.trust.Verify(ms[i].Raw, ms[i].Event)
			}
		}
	}
	if workers := min(runtime.GOMAXPROCS(0), (len(ms)+31)/32); workers <= 1 {
		verify(0, 1)
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); verify(w, workers) }()
		}
		wg.Wait()
	}
	for i, m := range ms {
		err := errs[i]
		if err != nil {
			f.table.Skip(m.Seq)
		} else {
			err = f.table.Apply(m.Seq, m.Event, events.Digest(m.Raw))
		}
		if err != nil {
			// Someone wrote to the stream who should not have: an alert.
			f.log.Error("ALERT: event ignored", "seq", m.Seq, "reason", err)
		}
	}
}

// markReady ends Run's first catch-up; later ones are CatchUp's.
func (f *Follower) markReady(gen, seq uint64) {
	f.once.Do(func() { f.setReady(gen, seq) })
}

func (f *Follower) generation() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

// setReady marks the table ready, unless it fell Behind since gen.
func (f *Follower) setReady(gen, seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if gen != f.gen || f.ready.Load() {
		return
	}
	f.ready.Store(true)
	close(f.up)
	f.down = make(chan struct{})
	f.log.Info("projections caught up", "seq", seq)
}

// Behind says the table may have fallen behind the stream (the node lost its
// NATS connection): it is not ready until CatchUp, so that a node never
// answers from a table that misses a revoke stored meanwhile.
func (f *Follower) Behind() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if f.ready.Load() {
		f.ready.Store(false)
		close(f.down)
		f.up = make(chan struct{})
	}
}

// CatchUp waits until the table holds every event the stream holds now and
// marks it ready again, unless it fell Behind once more meanwhile. It asks the
// stream until it answers or ctx ends.
func (f *Follower) CatchUp(ctx context.Context) error {
	gen := f.generation()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		// Just after a server is lost, a request may go unanswered: ask again
		// soon rather than wait long on one.
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		target, err := f.src.LastSeq(actx, "")
		cancel()
		if err == nil {
			if err := f.table.WaitApplied(ctx, target); err != nil {
				return err
			}
			f.setReady(gen, target)
			return nil
		}
		f.log.Warn("catching up: the stream does not answer yet", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// WaitReady blocks until the table has caught up or ctx ends.
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

// Lost returns a channel that is closed when the table falls Behind: what
// answers from the table stops then, and waits for WaitReady again.
func (f *Follower) Lost() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}
