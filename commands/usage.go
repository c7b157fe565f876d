package commands

import (
	"context"
	"log/slog"
	"time"
)

// UseRecorder writes token.used events off the validation path: a validation
// only drops a note in a channel (or drops the note when the channel is
// full), and one goroutine writes at most one event per token per Every,
// skipping tokens whose last recorded use, by any node, is recent enough.
type UseRecorder struct {
	ledger   *Ledger
	lastUsed func(account, tokenID string) time.Time
	every    time.Duration
	log      *slog.Logger
	notes    chan Use
	recent   map[string]time.Time // token id -> when this node last recorded it
}

// NewUseRecorder records through ledger; lastUsed tells the last use the
// node's projection knows of.
func NewUseRecorder(ledger *Ledger, lastUsed func(account, tokenID string) time.Time, every time.Duration, log *slog.Logger) *UseRecorder {
	return &UseRecorder{ledger: ledger, lastUsed: lastUsed, every: every, log: log,
		notes: make(chan Use, 4096), recent: make(map[string]time.Time)}
}

// Seen notes a successful validation. It never blocks.
func (r *UseRecorder) Seen(account, tokenID, ip string) {
	select {
	case r.notes <- Use{Account: account, TokenID: tokenID, IP: ip, At: r.ledger.Now()}:
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
				if r.ledger.Now().Sub(at) >= r.every {
					delete(r.recent, id)
				}
			}
		case u := <-r.notes:
			if u.At.Sub(r.recent[u.TokenID]) < r.every || u.At.Sub(r.lastUsed(u.Account, u.TokenID)) < r.every {
				continue
			}
			r.recent[u.TokenID] = u.At
			if err := r.ledger.RecordUse(ctx, u); err != nil && ctx.Err() == nil {
				r.log.Debug("use not recorded", "token_id", u.TokenID, "err", err)
			}
		}
	}
}
