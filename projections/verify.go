package projections

import (
	"context"

	"tokenledger/events"
)

// Problem is one stored message that does not belong in the ledger's history.
type Problem struct {
	Seq     uint64
	Account string // "" when the message does not decode
	Reason  string
}

// Checked sums up a verification.
type Checked struct {
	Events   int // messages read
	Accounts int // accounts whose chains were walked
	Problems []Problem
}

// Verify walks the stream (one account's events, or all) and checks each
// event as a node would before applying it: it decodes, verify accepts its
// signature, and it continues its account's chain. It calls progress after
// each message with the number read so far and the number still pending.
func Verify(ctx context.Context, r Reader, account string, verify func(raw []byte, e events.Event) error, progress func(read int, pending uint64)) (Checked, error) {
	var c Checked
	heads := make(map[string]events.Hash)
	err := r.Read(ctx, events.ReadOptions{Account: account}, func(m events.Msg) error {
		c.Events++
		if progress != nil {
			progress(c.Events, m.Pending)
		}
		bad := func(reason string) {
			c.Problems = append(c.Problems, Problem{Seq: m.Seq, Account: m.Event.Account, Reason: reason})
		}
		if m.Err != nil {
			bad("does not decode: " + m.Err.Error())
			return nil
		}
		e := m.Event
		if _, ok := heads[e.Account]; !ok {
			heads[e.Account] = events.Hash{}
		}
		if err := verify(m.Raw, e); err != nil {
			bad(err.Error())
			return nil
		}
		if err := events.Link(e, heads[e.Account]); err != nil {
			bad(err.Error() + " (a copied, reordered or unchained event)")
			return nil
		}
		heads[e.Account] = events.Digest(m.Raw)
		return nil
	})
	c.Accounts = len(heads)
	return c, err
}
