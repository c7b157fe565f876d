package commands

import (
	"context"
	"log/slog"
	"sync"
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

// UseRecorder records last uses off the validation path: a validation
// passes a token on at most once per Every (a map lookup under a lock; most
// validations end there), as a note in a channel, or drops the note when the
// channel is full; one goroutine then records it, unless the token's last
// use, recorded by any node, is recent enough. The store settles the rest
// between nodes.
type UseRecorder struct {
	record   func(context.Context, Use) error
	now      func() time.Time
	lastUsed func(account string, id events.TokenID) time.Time
	every    time.Duration
	log      *slog.Logger
	notes    chan Use

	// noted is when each token was last passed on, in two generations:
	// those older than two Every are let go of wholesale when cur becomes
	// prev, so that the map never needs a walk under the lock. A note per
	// validation woke the recorder goroutine per validation, tens of
	// thousands of times a second under load.
	mu        sync.Mutex
	cur, prev map[events.TokenID]time.Time
	turned    time.Time // when cur began
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
		notes: make(chan Use, 4096), cur: make(map[events.TokenID]time.Time)}
}

// Seen notes a successful validation. It never blocks.
func (r *UseRecorder) Seen(account string, id events.TokenID, ip string) {
	at := r.now()
	if !r.due(id, at) {
		return
	}
	select {
	case r.notes <- Use{Account: account, TokenID: id, IP: ip, At: at}:
	default: // busy: a later use will be recorded
		r.forget(id)
	}
}

// due says whether the token's use at is to be passed on, and if so notes
// that it was.
func (r *UseRecorder) due(id events.TokenID, at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at.Sub(r.turned) >= r.every {
		r.prev, r.cur, r.turned = r.cur, make(map[events.TokenID]time.Time, len(r.cur)), at
	}
	last, ok := r.cur[id]
	if !ok {
		last, ok = r.prev[id]
	}
	if ok && at.Sub(last) < r.every && !at.Before(last) {
		return false
	}
	r.cur[id] = at
	return true
}

// forget lets the next use of the token be passed on, when its note was dropped.
func (r *UseRecorder) forget(id events.TokenID) {
	r.mu.Lock()
	delete(r.cur, id)
	r.mu.Unlock()
}

// Run records notes until ctx ends.
func (r *UseRecorder) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-r.notes:
			if u.At.Sub(r.lastUsed(u.Account, u.TokenID)) < r.every {
				continue // another node recorded it lately
			}
			if err := r.record(ctx, u); err != nil && ctx.Err() == nil {
				r.log.Debug("use not recorded", "token_id", u.TokenID, "err", err)
			}
		}
	}
}
