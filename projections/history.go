package projections

import (
	"context"
	"time"

	"tokenledger/events"
)

// Reader is what an audit needs of the stream (*jetstream.Stream): a bounded read.
type Reader interface {
	Read(ctx context.Context, opts events.ReadOptions, fn func(events.Msg) error) error
}

// HistoryFilter narrows the audit history. Times are the stream's storage
// times; zero values do not filter.
type HistoryFilter struct {
	Account string
	Name    string // every event of every token that bore this name at any time
	TokenID string // a token id as the user gave it; one that is not a ULID matches nothing
	Since   time.Time
	Until   time.Time
}

// History calls fn for each stored event that matches f, oldest first,
// including events that do not decode (m.Err set) when no name or token
// filter applies, so an auditor sees everything that is on the stream.
func History(ctx context.Context, r Reader, f HistoryFilter, fn func(events.Msg) error) error {
	var id events.TokenID
	if f.TokenID != "" {
		var err error
		if id, err = events.ParseTokenID(f.TokenID); err != nil {
			return nil // no event is of it
		}
	}
	var ids map[events.TokenID]bool
	if f.Name != "" {
		// A name can move between tokens through renames and reuse after a
		// revoke: first find every token that bore it.
		ids = make(map[events.TokenID]bool)
		err := r.Read(ctx, events.ReadOptions{Account: f.Account}, func(m events.Msg) error {
			if m.Err == nil && m.Event.Data.Bears(f.Name) {
				ids[m.Event.TokenID] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
	}
	return readUntil(ctx, r, events.ReadOptions{Account: f.Account, Since: f.Since}, f.Until, func(m events.Msg) error {
		if (ids != nil || f.TokenID != "") && m.Err != nil {
			return nil
		}
		if ids != nil && !ids[m.Event.TokenID] || f.TokenID != "" && m.Event.TokenID != id {
			return nil
		}
		return fn(m)
	})
}

// AsOf rebuilds the token table as it stood at instant t by replaying only the
// events stored up to t (of account, or of all accounts when it is empty).
// Only events that verify (signature and chain) are applied, as on a node.
func AsOf(ctx context.Context, r Reader, account string, t time.Time, warn time.Duration, verify func(raw []byte, e events.Event) error) (*Table, error) {
	table := NewTable(warn)
	err := readUntil(ctx, r, events.ReadOptions{Account: account}, t, func(m events.Msg) error {
		if m.Err != nil || verify(m.Raw, m.Event) != nil {
			table.Skip(m.Seq)
			return nil
		}
		table.Apply(m.Seq, m.Event, events.Digest(m.Raw))
		return nil
	})
	return table, err
}

// errDone stops a read early; it never escapes this package.
type errDone struct{}

func (errDone) Error() string { return "done" }

// readUntil reads and stops at the first event stored after until.
func readUntil(ctx context.Context, r Reader, opts events.ReadOptions, until time.Time, fn func(events.Msg) error) error {
	err := r.Read(ctx, opts, func(m events.Msg) error {
		if !until.IsZero() && m.Stored.After(until) {
			return errDone{}
		}
		return fn(m)
	})
	if _, done := err.(errDone); done {
		return nil
	}
	return err
}
