package projections

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// Claimer lets one node of many send a notice once (*jetstream.Claims).
type Claimer interface {
	Claim(ctx context.Context, key, by string) (bool, error)
}

// Notifier publishes, once per token and across all nodes, a message on
// <prefix>.notices.expiring.<account> when a token enters the warning window
// and on <prefix>.notices.expired.<account> when it expires, so that a mailer
// can subscribe. Nothing is written to the stream: expiry is derived, not an event.
type Notifier struct {
	Table   *Table
	Claims  Claimer
	Publish func(subject string, data []byte) error
	Prefix  string
	Node    string // who claims: this node's public key
	Every   time.Duration
	Now     func() time.Time
	Log     *slog.Logger
	sent    map[string]bool // keys this node has settled, claimed by it or by another
}

// Run checks every Every until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	tick := time.NewTicker(n.Every)
	defer tick.Stop()
	for {
		n.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Check sends the notices that are due now.
func (n *Notifier) Check(ctx context.Context) {
	if n.sent == nil {
		n.sent = make(map[string]bool)
	}
	for _, note := range n.Table.Notices(n.Now()) {
		key := note.TokenID.String() + "." + note.Status
		if n.sent[key] {
			continue
		}
		won, err := n.Claims.Claim(ctx, key, n.Node)
		if err != nil {
			if ctx.Err() == nil {
				n.Log.Warn("expiry notice not claimed", "token_id", note.TokenID, "err", err)
			}
			return
		}
		n.sent[key] = true
		if !won {
			continue
		}
		body, _ := json.Marshal(note)
		if err := n.Publish(n.Prefix+".notices."+note.Status+"."+note.Account, body); err != nil {
			n.Log.Warn("expiry notice not published", "token_id", note.TokenID, "err", err)
		}
	}
}
