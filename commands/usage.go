package commands

import (
	"context"
	"log/slog"
	"time"

	"tokenledger/events"
)

// UseStore keeps each token's last use outside the event stream
// (*jetstream.Used): a use is no command, and must not take the account's
// concurrency sequence from one.
type UseStore interface {
	// Record stores u unless a use less than every before it is stored,
	// and says whether it did; of nodes racing, one wins.
	Record(ctx context.Context, u events.LastUse, every time.Duration) (bool, error)
}

// UseConfig is what a UseRecorder works with.
type UseConfig struct {
	Store    UseStore
	Node     string // this node's public key, kept with each use it records
	Now      func() time.Time
	LastUsed func(account string, id events.TokenID) time.Time // the last use the node's table knows of
	Every    time.Duration                                     // at most one record per token per this, across all nodes
	Log      *slog.Logger
}

// UseRecorder records last uses off the validation path: a validation only
// drops a note in a channel (or drops the note when the channel is full), and
// one goroutine records at most one use per token per Every, skipping tokens
// whose last use, recorded by any node, is recent enough. Most notes end
// there, without I/O; the store settles the rest between nodes.
type UseRecorder struct {
	record   func(context.Context, Use) error
	now      func() time.Time
	lastUsed func(account string, id events.TokenID) time.Time
	every    time.Duration
	log      *slog.Logger
	notes    chan Use
	recent   map[events.TokenID]time.Time // when this node last recorded each token's use, or found it recorded
}

// NewUses returns a recorder that keeps last uses in cfg.Store.
func NewUses(cfg UseConfig) *UseRecorder {
	record := func(ctx context.Context, u Use) error {
		_, err := cfg.Store.Record(ctx, events.LastUse{Account: u.Account, TokenID: u.TokenID.String(), At: u.At, IP: u.IP, Node: cfg.Node}, cfg.Every)
		return err
	}
	return newUseRecorder(record, cfg.Now, cfg.LastUsed, cfg.Every, cfg.Log)
}

// NewUseRecorder records uses as token.used events in the stream, through
// ledger.
//
// Deprecated: such events share the account's concurrency sequence with its
// commands, which then lose races to validations; use NewUses.
func NewUseRecorder(ledger *Ledger, lastUsed func(account string, id events.TokenID) time.Time, every time.Duration, log *slog.Logger) *UseRecorder {
	return newUseRecorder(ledger.RecordUse, ledger.Now, lastUsed, every, log)
}

func newUseRecorder(record func(context.Context, Use) error, now func() time.Time, lastUsed func(account string, id events.TokenID) time.Time, every time.Duration, log *slog.Logger) *UseRecorder {
	return &UseRecorder{record: record, now: now, lastUsed: lastUsed, every: every, log: log,
		notes: make(chan Use, 4096), recent: make(map[events.TokenID]time.Time)}
}

// Seen notes a successful validation. It never blocks.
func (r *UseRecorder) Seen(account string, id events.TokenID, ip string) {
	select {
	case r.notes <- Use{Account: account, TokenID: id, IP: ip, At: r.now()}:
	default: // busy: a later use will be recorded
	}
}

// Run records notes until ctx ends.
func (r *UseRecorder) Run(ctx context.Context) error {
	sweep := time.NewTicker(max(r.every, time.Minute))
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			for id, at := range r.recent {
				if r.now().Sub(at) >= r.every {
					delete(r.recent, id)
				}
			}
		case u := <-r.notes:
			if u.At.Sub(r.recent[u.TokenID]) < r.every || u.At.Sub(r.lastUsed(u.Account, u.TokenID)) < r.every {
				continue
			}
			r.recent[u.TokenID] = u.At
			if err := r.record(ctx, u); err != nil && ctx.Err() == nil {
				r.log.Debug("use not recorded", "token_id", u.TokenID, "err", err)
			}
		}
	}
}
