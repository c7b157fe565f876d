package projections

import (
	"context"
	"log/slog"
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
	return f.src.Follow(ctx, f.table.Applied(), func(m events.Msg) {
		if err := f.apply(m); err != nil {
			// Someone wrote to the stream who should not have: an alert.
			f.log.Error("ALERT: event ignored", "seq", m.Seq, "reason", err)
		}
		if !f.ready.Load() && (m.Seq >= target || m.Pending == 0) {
			f.markReady(m.Seq)
		}
	})
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

// apply folds in one message if it decodes, is signed by a trusted key and
// continues its account's chain.
func (f *Follower) apply(m events.Msg) error {
	err := m.Err
	if err == nil {
		err = f.trust.Verify(m.Raw, m.Event)
	}
	if err != nil {
		f.table.Skip(m.Seq)
		return err
	}
	return f.table.Apply(m.Seq, m.Event, events.Digest(m.Raw))
}
