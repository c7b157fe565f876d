package projections

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"tokenledger/events"
)

// Source is what the read side needs of the event stream (*events.Stream).
type Source interface {
	Follow(ctx context.Context, after uint64, fn func(events.Msg)) error
	LastSeq(ctx context.Context, account string) (uint64, error)
}

// Follower keeps a Table in step with the stream and says when it has caught
// up with what the stream held when it started.
type Follower struct {
	table *Table
	src   Source
	trust *events.Trust
	log   *slog.Logger
	ready atomic.Bool
	once  sync.Once
	up    chan struct{} // closed once ready
}

// NewFollower returns a follower that feeds table from src with the events
// that trust's keys signed.
func NewFollower(table *Table, src Source, trust *events.Trust, log *slog.Logger) *Follower {
	return &Follower{table: table, src: src, trust: trust, log: log, up: make(chan struct{})}
}

// Ready says whether the table has caught up with the stream.
func (f *Follower) Ready() bool { return f.ready.Load() }

// Run applies every event after the table's last sequence, then each new one,
// until ctx ends. The consumer resumes by itself after a lost connection.
func (f *Follower) Run(ctx context.Context) error {
	target, err := f.src.LastSeq(ctx, "")
	if err != nil {
		return err
	}
	if f.table.Applied() >= target {
		f.markReady(target)
	}
	// While catching up, messages are verified in batches on every core
	// (a signature check costs far more than applying an event); live, each
	// message arrives with nothing pending and is applied at once.
	batch := make([]events.Msg, 0, maxBatch)
	return f.src.Follow(ctx, f.table.Applied(), func(m events.Msg) {
		batch = append(batch, m)
		if len(batch) < maxBatch && m.Pending > 0 {
			return
		}
		f.applyBatch(batch)
		batch = batch[:0]
		if !f.ready.Load() && (m.Seq >= target || m.Pending == 0) {
			f.markReady(m.Seq)
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
			if errs[i] == nil {
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

func (f *Follower) markReady(seq uint64) {
	f.once.Do(func() {
		f.ready.Store(true)
		close(f.up)
		f.log.Info("projections caught up", "seq", seq)
	})
}

// WaitReady blocks until the table has caught up or ctx ends.
func (f *Follower) WaitReady(ctx context.Context) error {
	select {
	case <-f.up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
