package commands

import (
	"context"
	"fmt"
	"sync"
	"time"

	"tokenledger/events"
)

// Log is what the write side needs of the event stream (*jetstream.Stream).
type Log interface {
	Append(ctx context.Context, account string, expect uint64, evs []events.Event) (uint64, error)
	Read(ctx context.Context, opts events.ReadOptions, fn func(events.Msg) error) error
	LastSeq(ctx context.Context, account string) (uint64, error)
}

// Projection is what the write side needs of the node's read side: to wait
// until an appended event is applied, so a caller reads its own writes.
type Projection interface {
	WaitApplied(ctx context.Context, seq uint64) error
	// Vouch says that a message with this digest is an event this node
	// signed, so the projection need not check its signature again.
	Vouch(digest events.Hash)
	// ApplyOwn applies an event this node just stored at seq, if the
	// projection holds the account's earlier events, and says whether it did.
	ApplyOwn(seq uint64, e events.Event, digest events.Hash) bool
}

// maxAttempts bounds how often a command re-reads its account and decides
// again after losing a race before it reports a conflict.
//
// This loop is the domain's, not a network retry (those go through
// internal/retry, in the adapter and the client): a Conflict is an answer,
// that another event of the account was stored first, and what it calls for
// is a new decision on the fresh state, which may now refuse, not the same
// append sent again. So it counts decisions rather than time, and does not
// pause: each attempt has read what beat it.
const maxAttempts = 5

// Config is what a Ledger works with.
type Config struct {
	Log        Log
	Projection Projection
	Now        func() time.Time
	Signer     *events.Signer // signs every event this node appends
	Trust      *events.Trust  // keys whose events count when reading an account
	// MaxLifetime, when set, refuses tokens that never expire or expire later.
	MaxLifetime time.Duration
}

// Ledger carries out commands. It keeps each account's decision state in
// memory, brought up to date from the stream when an append finds it stale,
// and runs one command per account at a time on this node.
type Ledger struct {
	Config

	mu       sync.Mutex
	accounts map[string]*account
}

type account struct {
	mu     sync.Mutex
	state  State
	loaded bool // state has been read from the stream at least once
}

// New returns a Ledger.
func New(cfg Config) *Ledger {
	return &Ledger{Config: cfg, accounts: make(map[string]*account)}
}

// Created is what a successful create or rotate returns: the token's event,
// the token as it stands after it, and its secret, which exists nowhere else
// and must be shown once and then dropped. A transport replies from it alone.
type Created struct {
	Event  events.Event
	Token  Token
	Secret string
}

// Token is a live token as the ledger knows it after a command: what a
// reply shows of it. What only the read side knows (status, last use) is
// not here.
type Token struct {
	ID        events.TokenID
	Name      string
	Created   time.Time
	ExpiresAt *int64   // Unix seconds; nil: never
	Features  []string // sorted; none: full access
	ReadOnly  bool
}

// token is the live token named name, which the caller knows to be live.
func (s *State) token(name string) Token {
	t := s.live[name]
	return Token{ID: t.id, Name: name, Created: t.created, ExpiresAt: t.expiresAt, Features: t.features, ReadOnly: t.readOnly}
}

// CheckCreate refuses what Create would refuse before it reads the account:
// bad input, or a lifetime beyond the ledger's policy. A transport may call
// it first, to refuse at once.
func (l *Ledger) CheckCreate(c Create) error {
	now := l.Now()
	if err := c.Check(now); err != nil {
		return err
	}
	return c.CheckLifetime(now, l.MaxLifetime)
}

// Create issues a token.
func (l *Ledger) Create(ctx context.Context, c Create) (Created, error) {
	if err := l.CheckCreate(c); err != nil {
		return Created{}, err
	}
	secret := events.NewSecret()
	hash, tokenID := events.HashSecret(secret), events.NewTokenID()
	evs, err := l.execute(ctx, c.Account, func(s *State) ([]events.Event, error) {
		return decideCreate(s, c, hash, tokenID, l.Now(), events.NewID)
	})
	if err != nil {
		return Created{}, err
	}
	var made State
	made.Evolve(evs[0])
	return Created{Event: evs[0], Token: made.token(c.Name), Secret: secret}, nil
}

// Rename gives a live token a new name.
func (l *Ledger) Rename(ctx context.Context, c Rename) error {
	if err := c.Check(); err != nil {
		return err
	}
	_, err := l.execute(ctx, c.Account, func(s *State) ([]events.Event, error) {
		return decideRename(s, c, l.Now(), events.NewID)
	})
	return err
}

// Revoke removes live tokens, all or none. A refusal for unknown names
// names them all (events.ErrorNames), in the order given.
func (l *Ledger) Revoke(ctx context.Context, c Revoke) error {
	if err := c.Check(); err != nil {
		return err
	}
	_, err := l.execute(ctx, c.Account, func(s *State) ([]events.Event, error) {
		return decideRevoke(s, c, l.Now(), events.NewID)
	})
	return err
}

// Rotate gives a live token a new secret; the result's Secret is the new one,
// and its Token the token, whose id, name, creation, expiry and access stay.
func (l *Ledger) Rotate(ctx context.Context, c Rotate) (Created, error) {
	if err := c.Check(); err != nil {
		return Created{}, err
	}
	secret := events.NewSecret()
	hash := events.HashSecret(secret)
	var t Token
	evs, err := l.execute(ctx, c.Account, func(s *State) ([]events.Event, error) {
		evs, err := decideRotate(s, c, hash, l.Now(), events.NewID)
		if err == nil {
			t = s.token(c.Name) // a rotation changes none of what a Token holds
		}
		return evs, err
	})
	if err != nil {
		return Created{}, err
	}
	return Created{Event: evs[0], Token: t, Secret: secret}, nil
}

// SetAllowedIPs replaces a live token's address allow-list.
func (l *Ledger) SetAllowedIPs(ctx context.Context, c SetAllowedIPs) error {
	if err := c.Check(); err != nil {
		return err
	}
	_, err := l.execute(ctx, c.Account, func(s *State) ([]events.Event, error) {
		return decideSetAllowedIPs(s, c, l.Now(), events.NewID)
	})
	return err
}

// SetFeatures replaces a live token's features; none gives it full access.
func (l *Ledger) SetFeatures(ctx context.Context, c SetFeatures) error {
	if err := c.Check(); err != nil {
		return err
	}
	_, err := l.execute(ctx, c.Account, func(s *State) ([]events.Event, error) {
		return decideSetFeatures(s, c, l.Now(), events.NewID)
	})
	return err
}

// RecordUse appends a token.used event for a live token, as nodes did before
// last uses moved to their own bucket (see NewUses); the table still applies
// such events, so that the history stays readable.
//
// Deprecated: the event takes the account's concurrency sequence from its
// commands; record uses with a UseRecorder made by NewUses.
func (l *Ledger) RecordUse(ctx context.Context, c Use) error {
	_, err := l.execute(ctx, c.Account, func(s *State) ([]events.Event, error) {
		return decideUse(s, c, events.NewID)
	})
	return err
}

// execute decides against the account's state and appends the result on
// condition that no other event of the account was stored in between. A
// refusal is only given against state known to be current.
func (l *Ledger) execute(ctx context.Context, name string, decide func(*State) ([]events.Event, error)) ([]events.Event, error) {
	a := l.account(name)
	a.mu.Lock()
	defer a.mu.Unlock()
	verified := false // the state was checked against the stream in this call
	if !a.loaded {
		if _, err := l.catchUp(ctx, name, a, ""); err != nil {
			return nil, err
		}
		verified = true
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		evs, err := decide(&a.state)
		if err != nil {
			if verified {
				return nil, err
			}
			// Another node may have changed the account since we last looked.
			last, lerr := l.Log.LastSeq(ctx, name)
			if lerr != nil {
				return nil, lerr
			}
			if last == a.state.Seq {
				return nil, err
			}
			if _, err := l.catchUp(ctx, name, a, ""); err != nil {
				return nil, err
			}
			verified = true
			continue
		}
		head, err := l.sign(evs, a.state.Head)
		if err != nil {
			return nil, err
		}
		seq, err := l.Log.Append(ctx, name, a.state.Seq, evs)
		if code := events.ErrorCode(err); code == events.Conflict || code == events.Unavailable {
			// Either another change came first, or our append was stored and
			// its acknowledgement lost (a retry then meets a moved sequence):
			// read what is there, and look for our own last event.
			stored, cerr := l.catchUp(ctx, name, a, evs[len(evs)-1].ID)
			switch {
			case cerr != nil:
				return nil, err
			case stored > 0:
				return evs, l.applied(ctx, stored)
			case code == events.Unavailable:
				return nil, err
			}
			verified = true
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			a.state.Evolve(e)
		}
		a.state.Seq, a.state.Head = seq, head
		// Most often the projection is level with this account, and takes
		// the event now rather than when it comes back from the stream.
		if len(evs) == 1 && l.Projection.ApplyOwn(seq, evs[0], head) {
			return evs, nil
		}
		return evs, l.applied(ctx, seq)
	}
	return nil, events.Errorf(events.Conflict, "the account %s kept changing under this command (%d attempts); try again", name, maxAttempts)
}

// catchUp folds the account's events stored after the state's sequence and
// returns the sequence of the event with id mine, if it is among them.
// Events that do not decode, verify or continue the chain are skipped but
// still move the sequence on, since the concurrency check counts every
// stored message.
//
// Once it returns without error the state is current: Log.Read reads up to
// the account's last sequence as the stream's leader gave it when the read
// began, or fails; it never takes a copy of the stream that lags for the
// whole story. A refusal decided on the state then holds against every
// event stored before the catch-up began. A failed catch-up leaves the
// state at the events it did read, in order; the next one goes on from there.
func (l *Ledger) catchUp(ctx context.Context, name string, a *account, mine string) (uint64, error) {
	var found uint64
	err := l.Log.Read(ctx, events.ReadOptions{Account: name, AfterSeq: a.state.Seq}, func(m events.Msg) error {
		a.state.Seq = m.Seq
		if m.Err != nil || l.Trust.Verify(m.Raw, m.Event) != nil || events.Link(m.Event, a.state.Head) != nil {
			return nil // not part of the account's history; the projection raises the alert
		}
		a.state.Evolve(m.Event)
		a.state.Head = events.Digest(m.Raw)
		if mine != "" && m.Event.ID == mine {
			found = m.Seq
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	a.loaded = true
	return found, nil
}

// sign seals evs in order, each chained to the one before, the first to
// head, and returns the digest of the last.
func (l *Ledger) sign(evs []events.Event, head events.Hash) (events.Hash, error) {
	for i := range evs {
		var err error
		if head, err = l.Signer.Sign(&evs[i], head); err != nil {
			return events.Hash{}, err
		}
		l.Projection.Vouch(head)
	}
	return head, nil
}

// applied waits until this node's projection holds the event at seq, so the
// caller reads its own write.
func (l *Ledger) applied(ctx context.Context, seq uint64) error {
	if err := l.Projection.WaitApplied(ctx, seq); err != nil {
		return fmt.Errorf("%w: %v", events.Errorf(events.Unavailable, "the change was stored (sequence %d) but this node has not applied it yet", seq), err)
	}
	return nil
}

func (l *Ledger) account(name string) *account {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.accounts[name]
	if a == nil {
		a = &account{}
		l.accounts[name] = a
	}
	return a
}
