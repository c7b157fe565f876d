package projections

import (
	"context"
	"log/slog"
	"time"

	"tokenledger/events"
)

// UseSource is where last uses are kept outside the stream (*jetstream.Used).
type UseSource interface {
	Watch(ctx context.Context, fn func(u events.LastUse, stored bool)) error
}

// UseWatcher brings the last uses that any node records into this node's
// table, for list's last_used and last_ip. One runs per node. Start it once
// the table has caught up with the stream (Follower.WaitReady): the uses
// stored before it began are then of tokens the table holds, or of revoked
// ones, and only a use recorded later can be of a token this node has yet to
// see created.
type UseWatcher struct {
	Table  *Table
	Source UseSource
	Log    *slog.Logger
}

// watchRetry is the wait before watching again after a watch failed (it
// could not start, or its connection closed): a lag in last_used only.
const watchRetry = 5 * time.Second

// Run watches until ctx ends, and watches again when the watch fails.
func (w *UseWatcher) Run(ctx context.Context) error {
	for {
		err := w.Source.Watch(ctx, func(u events.LastUse, stored bool) { w.Table.NoteUse(u, !stored) })
		if ctx.Err() != nil {
			return nil
		}
		w.Log.Warn("watching last uses failed; last_used may lag until it works again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchRetry):
		}
	}
}
