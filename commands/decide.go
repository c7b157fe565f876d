package commands

import (
	"slices"
	"time"

	"tokenledger/events"
)

// Create asks for a new token. ExpiresAt is Unix seconds, nil for never.
type Create struct {
	Account   string
	Name      string
	ExpiresAt *int64
	Actor     events.Actor
}

// Rename asks for a live token to take a new name.
type Rename struct {
	Account string
	Name    string
	NewName string
	Actor   events.Actor
}

// Revoke asks for live tokens to be removed, all of them or none.
type Revoke struct {
	Account string
	Names   []string
	Actor   events.Actor
}

// Check refuses bad input before anything else happens.
func (c Create) Check(now time.Time) error {
	if err := events.CheckAccount(c.Account); err != nil {
		return err
	}
	if err := events.CheckActor(c.Actor); err != nil {
		return err
	}
	if err := events.CheckName(c.Name); err != nil {
		return err
	}
	if c.ExpiresAt != nil && *c.ExpiresAt <= now.Unix() {
		return events.Errorf(events.Invalid, "the expiry %s is not in the future", time.Unix(*c.ExpiresAt, 0).Format(time.RFC3339))
	}
	return nil
}

// Check refuses bad input before anything else happens.
func (c Rename) Check() error {
	if err := events.CheckAccount(c.Account); err != nil {
		return err
	}
	if err := events.CheckActor(c.Actor); err != nil {
		return err
	}
	if err := events.CheckName(c.Name); err != nil {
		return err
	}
	if err := events.CheckName(c.NewName); err != nil {
		return err
	}
	if c.Name == c.NewName {
		return events.Errorf(events.Invalid, "the new name must differ from the old name %q", c.Name)
	}
	return nil
}

// Check refuses bad input before anything else happens.
func (c Revoke) Check() error {
	if err := events.CheckAccount(c.Account); err != nil {
		return err
	}
	if err := events.CheckActor(c.Actor); err != nil {
		return err
	}
	if len(c.Names) == 0 {
		return events.Errorf(events.Invalid, "name at least one token to revoke")
	}
	if len(c.Names) > maxRevoke {
		return events.Errorf(events.Invalid, "at most %d tokens can be revoked at once", maxRevoke)
	}
	for _, n := range c.Names {
		if err := events.CheckName(n); err != nil {
			return err
		}
	}
	return nil
}

// maxRevoke stays within JetStream's limit of 1000 messages in an atomic batch.
const maxRevoke = 1000

// State is what a decision needs to know of an account: its live tokens by
// name, as of the account's last event at stream sequence Seq.
type State struct {
	Seq  uint64
	Head events.Hash // digest of the account's last valid event: the next one's prev
	live map[string]liveToken
}

type liveToken struct {
	id        string
	expiresAt *int64
}

// Evolve folds one stored event into the state. Like a projection's apply it
// has no error and no I/O: the event is a fact.
func (s *State) Evolve(e events.Event) {
	if s.live == nil {
		s.live = make(map[string]liveToken)
	}
	switch d := e.Data.(type) {
	case events.TokenCreated:
		s.live[d.Name] = liveToken{id: e.TokenID, expiresAt: d.ExpiresAt}
	case events.TokenRenamed:
		if t, ok := s.live[d.OldName]; ok && t.id == e.TokenID {
			delete(s.live, d.OldName)
			s.live[d.NewName] = t
		}
	case events.TokenRevoked:
		if t, ok := s.live[d.Name]; ok && t.id == e.TokenID {
			delete(s.live, d.Name)
		}
	}
}

// decideCreate issues a token under a name that no live token of the account
// bears. Only the secret's hash goes into the event.
func decideCreate(s *State, c Create, hash events.Hash, tokenID string, now time.Time, newID func() string) ([]events.Event, error) {
	if _, taken := s.live[c.Name]; taken {
		return nil, events.Errorf(events.Duplicate, "a token named %q already exists", c.Name)
	}
	return []events.Event{{
		ID: newID(), At: now, Account: c.Account, TokenID: tokenID, Actor: c.Actor,
		Data: events.TokenCreated{Name: c.Name, TokenHash: hash.String(), ExpiresAt: c.ExpiresAt, FullAccess: true},
	}}, nil
}

// decideRename gives a live token a free name.
func decideRename(s *State, c Rename, now time.Time, newID func() string) ([]events.Event, error) {
	t, ok := s.live[c.Name]
	if !ok {
		return nil, events.Errorf(events.NotFound, "no token named %q", c.Name)
	}
	if _, taken := s.live[c.NewName]; taken {
		return nil, events.Errorf(events.Duplicate, "a token named %q already exists", c.NewName)
	}
	return []events.Event{{
		ID: newID(), At: now, Account: c.Account, TokenID: t.id, Actor: c.Actor,
		Data: events.TokenRenamed{OldName: c.Name, NewName: c.NewName},
	}}, nil
}

// decideRevoke removes every named live token, or refuses them all when one
// is unknown. A name given twice is revoked once.
func decideRevoke(s *State, c Revoke, now time.Time, newID func() string) ([]events.Event, error) {
	var evs []events.Event
	seen := make(map[string]bool, len(c.Names))
	for _, name := range c.Names {
		if seen[name] {
			continue
		}
		seen[name] = true
		t, ok := s.live[name]
		if !ok {
			return nil, events.Errorf(events.NotFound, "no token named %q", name)
		}
		evs = append(evs, events.Event{
			ID: newID(), At: now, Account: c.Account, TokenID: t.id, Actor: c.Actor,
			Data: events.TokenRevoked{Name: name},
		})
	}
	return slices.Clip(evs), nil
}
