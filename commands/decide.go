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
	// AllowedIPs are the addresses and ranges the token may be used from,
	// none: any. The transport parses them (events.ParsePrefixes), once,
	// where the request comes in; a repeat is dropped here.
	AllowedIPs []events.Prefix
	Features   []string // what the token may do (events.CheckFeature); none: full access
	ReadOnly   bool     // it may only do what changes nothing
	Actor      events.Actor
}

// Rotate asks for a new secret for a live token, same id, name and expiry.
// The old secret keeps working for Grace (0: it stops at once).
type Rotate struct {
	Account string
	Name    string
	Grace   time.Duration
	Actor   events.Actor
}

// SetAllowedIPs replaces a live token's address allow-list (empty: any),
// parsed as Create's is.
type SetAllowedIPs struct {
	Account    string
	Name       string
	AllowedIPs []events.Prefix
	Actor      events.Actor
}

// SetFeatures replaces a live token's features; none gives it full access
// again.
type SetFeatures struct {
	Account  string
	Name     string
	Features []string
	Actor    events.Actor
}

// Use records that a token validated, from IP if known.
type Use struct {
	Account string
	TokenID events.TokenID
	IP      string
	At      time.Time
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

// checkWho refuses a bad account or actor: every command names both, and
// every transport's command passes here before anything is decided or
// appended, so an actor the history could not show is refused as invalid.
func checkWho(account string, actor events.Actor) error {
	if err := events.CheckAccount(account); err != nil {
		return err
	}
	return events.CheckActor(actor)
}

// Check refuses bad input before anything else happens.
func (c Create) Check(now time.Time) error {
	if err := checkWho(c.Account, c.Actor); err != nil {
		return err
	}
	if err := events.CheckName(c.Name); err != nil {
		return err
	}
	if c.ExpiresAt != nil {
		if err := events.CheckExpiry(*c.ExpiresAt, now); err != nil {
			return err
		}
	}
	if err := events.CheckPrefixes(c.AllowedIPs); err != nil {
		return err
	}
	_, err := events.ParseFeatures(c.Features)
	return err
}

// CheckLifetime refuses, when a policy sets a longest lifetime, a token that
// would never expire or expire later than that.
func (c Create) CheckLifetime(now time.Time, longest time.Duration) error {
	if longest <= 0 {
		return nil
	}
	limit := now.Add(longest)
	if c.ExpiresAt == nil || time.Unix(*c.ExpiresAt, 0).After(limit) {
		return events.Errorf(events.Invalid, "tokens must expire within %s (by %s): the lifetime policy of this ledger", longest, limit.UTC().Format(time.RFC3339))
	}
	return nil
}

// Check refuses bad input before anything else happens.
func (c Rotate) Check() error {
	if err := checkWho(c.Account, c.Actor); err != nil {
		return err
	}
	if c.Grace < 0 || c.Grace > 366*24*time.Hour {
		return events.Errorf(events.Invalid, "the grace period must be between 0 and a year")
	}
	return events.CheckName(c.Name)
}

// Check refuses bad input before anything else happens.
func (c SetAllowedIPs) Check() error {
	if err := checkWho(c.Account, c.Actor); err != nil {
		return err
	}
	if err := events.CheckName(c.Name); err != nil {
		return err
	}
	return events.CheckPrefixes(c.AllowedIPs)
}

// Check refuses bad input before anything else happens.
func (c SetFeatures) Check() error {
	if err := checkWho(c.Account, c.Actor); err != nil {
		return err
	}
	if err := events.CheckName(c.Name); err != nil {
		return err
	}
	_, err := events.ParseFeatures(c.Features)
	return err
}

// Check refuses bad input before anything else happens.
func (c Rename) Check() error {
	if err := checkWho(c.Account, c.Actor); err != nil {
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
	if err := checkWho(c.Account, c.Actor); err != nil {
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
	ids  map[events.TokenID]string // name of each live token
}

type liveToken struct {
	id        events.TokenID
	created   time.Time   // when it was created: rotate's reply shows it
	hash      events.Hash // of its current secret
	expiresAt *int64
	features  []string // sorted; none: full access
	readOnly  bool
}

// Evolve folds one stored event into the state. Like a projection's apply it
// has no error and no I/O: the event is a fact.
func (s *State) Evolve(e events.Event) {
	if s.live == nil {
		s.live, s.ids = make(map[string]liveToken), make(map[events.TokenID]string)
	}
	switch d := e.Data.(type) {
	case events.TokenCreated:
		s.live[d.Name] = liveToken{id: e.TokenID, created: e.At, hash: d.TokenHash, expiresAt: d.ExpiresAt, features: d.Features, readOnly: d.ReadOnly}
		s.ids[e.TokenID] = d.Name
	case events.FeaturesSet:
		if t, ok := s.live[d.Name]; ok && t.id == e.TokenID {
			t.features = d.Features
			if len(t.features) == 0 {
				t.features = nil // full access, as a token created without features has
			}
			s.live[d.Name] = t
		}
	case events.TokenRotated:
		if t, ok := s.live[d.Name]; ok && t.id == e.TokenID && t.hash == d.OldTokenHash {
			t.hash = d.TokenHash
			s.live[d.Name] = t
		}
	case events.TokenRenamed:
		if t, ok := s.live[d.OldName]; ok && t.id == e.TokenID {
			delete(s.live, d.OldName)
			s.live[d.NewName] = t
			s.ids[e.TokenID] = d.NewName
		}
	case events.TokenRevoked:
		if t, ok := s.live[d.Name]; ok && t.id == e.TokenID {
			delete(s.live, d.Name)
			delete(s.ids, e.TokenID)
		}
	}
}

// actingToken is the live token that acts, when a token does (over the
// UAPI, a token of the account acts on its own account), and refuses a
// command from a token that may not give one: a read-only token changes
// nothing, and a token that is no longer live does nothing at all. ok is
// false when no token acts (an operator or the account's owner).
func (s *State) actingToken(a events.Actor) (t liveToken, ok bool, err error) {
	if a.Kind != events.ActorToken {
		return liveToken{}, false, nil
	}
	id, err := events.ParseTokenID(a.TokenID) // CheckActor has checked it
	name, live := s.ids[id]
	if err != nil || !live {
		return liveToken{}, false, events.Errorf(events.Unauthorized, "the token that gave this command is no longer live")
	}
	t = s.live[name]
	if t.readOnly {
		return liveToken{}, false, events.Errorf(events.Unauthorized, "a read-only token cannot change tokens")
	}
	return t, true, nil
}

// mayGrant refuses to let a token acting hand on more than it has: a token
// with features gives at most those (so never full access), whether to a
// new token, by a change of features, or by rotating a token with more and
// taking its new secret. An operator, the account's owner and a token with
// full access may give anything.
func (s *State) mayGrant(a events.Actor, features []string) error {
	t, acting, err := s.actingToken(a)
	if err != nil || !acting || len(t.features) == 0 {
		return err
	}
	if len(features) == 0 {
		return events.Errorf(events.Unauthorized, "a token with limited access cannot give full access")
	}
	for _, f := range features {
		if _, found := slices.BinarySearch(t.features, f); !found {
			return events.Errorf(events.Unauthorized, "a token without the feature %q cannot give it", f)
		}
	}
	return nil
}

// decideCreate issues a token under a name that no live token of the account
// bears. Only the secret's hash goes into the event.
func decideCreate(s *State, c Create, hash events.Hash, tokenID events.TokenID, now time.Time, newID func() string) ([]events.Event, error) {
	features, err := events.ParseFeatures(c.Features)
	if err != nil {
		return nil, err
	}
	allowed, err := events.DistinctPrefixes(c.AllowedIPs)
	if err != nil {
		return nil, err
	}
	if len(allowed) == 0 {
		allowed = nil // written only when the token has a list
	}
	if err := s.mayGrant(c.Actor, features); err != nil {
		return nil, err
	}
	if _, taken := s.live[c.Name]; taken {
		return nil, events.Errorf(events.Duplicate, "a token named %q already exists", c.Name).About(c.Account, c.Name)
	}
	return []events.Event{{
		ID: newID(), At: now, Account: c.Account, TokenID: tokenID, Actor: c.Actor,
		Data: events.TokenCreated{Name: c.Name, TokenHash: hash, ExpiresAt: c.ExpiresAt, FullAccess: len(features) == 0,
			AllowedIPs: allowed, Features: features, ReadOnly: c.ReadOnly},
	}}, nil
}

// decideSetFeatures replaces a live token's features.
func decideSetFeatures(s *State, c SetFeatures, now time.Time, newID func() string) ([]events.Event, error) {
	features, err := events.ParseFeatures(c.Features)
	if err != nil {
		return nil, err
	}
	if err := s.mayGrant(c.Actor, features); err != nil {
		return nil, err
	}
	t, ok := s.live[c.Name]
	if !ok {
		return nil, events.Errorf(events.NotFound, "no token named %q", c.Name).About(c.Account, c.Name)
	}
	if features == nil {
		features = []string{}
	}
	return []events.Event{{ID: newID(), At: now, Account: c.Account, TokenID: t.id, Actor: c.Actor,
		Data: events.FeaturesSet{Name: c.Name, Features: features}}}, nil
}

// decideRotate gives a live token a new secret.
func decideRotate(s *State, c Rotate, hash events.Hash, now time.Time, newID func() string) ([]events.Event, error) {
	t, ok := s.live[c.Name]
	if !ok {
		if _, _, err := s.actingToken(c.Actor); err != nil {
			return nil, err
		}
		return nil, events.Errorf(events.NotFound, "no token named %q", c.Name).About(c.Account, c.Name)
	}
	// Whoever rotates a token holds its new secret.
	if err := s.mayGrant(c.Actor, t.features); err != nil {
		return nil, err
	}
	d := events.TokenRotated{Name: c.Name, TokenHash: hash, OldTokenHash: t.hash}
	if c.Grace > 0 {
		until := now.Add(c.Grace).Unix()
		d.GraceUntil = &until
	}
	return []events.Event{{ID: newID(), At: now, Account: c.Account, TokenID: t.id, Actor: c.Actor, Data: d}}, nil
}

// decideSetAllowedIPs replaces a live token's allow-list.
func decideSetAllowedIPs(s *State, c SetAllowedIPs, now time.Time, newID func() string) ([]events.Event, error) {
	list, err := events.DistinctPrefixes(c.AllowedIPs)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []events.Prefix{} // the event says "any address" with []
	}
	if _, _, err := s.actingToken(c.Actor); err != nil {
		return nil, err
	}
	t, ok := s.live[c.Name]
	if !ok {
		return nil, events.Errorf(events.NotFound, "no token named %q", c.Name).About(c.Account, c.Name)
	}
	return []events.Event{{ID: newID(), At: now, Account: c.Account, TokenID: t.id, Actor: c.Actor,
		Data: events.AllowedIPsSet{Name: c.Name, AllowedIPs: list}}}, nil
}

// decideUse records a use of a live token; a token revoked since is not recorded.
func decideUse(s *State, c Use, newID func() string) ([]events.Event, error) {
	name, ok := s.ids[c.TokenID]
	if !ok {
		return nil, events.Errorf(events.NotFound, "no live token %s", c.TokenID)
	}
	return []events.Event{{ID: newID(), At: c.At, Account: c.Account, TokenID: c.TokenID,
		Actor: events.Actor{Kind: events.ActorToken, Name: name, TokenID: c.TokenID.String(), Remote: c.IP},
		Data:  events.TokenUsed{IP: c.IP}}}, nil
}

// decideRename gives a live token a free name.
func decideRename(s *State, c Rename, now time.Time, newID func() string) ([]events.Event, error) {
	if _, _, err := s.actingToken(c.Actor); err != nil {
		return nil, err
	}
	t, ok := s.live[c.Name]
	if !ok {
		return nil, events.Errorf(events.NotFound, "no token named %q", c.Name).About(c.Account, c.Name)
	}
	if _, taken := s.live[c.NewName]; taken {
		return nil, events.Errorf(events.Duplicate, "a token named %q already exists", c.NewName).About(c.Account, c.NewName)
	}
	return []events.Event{{
		ID: newID(), At: now, Account: c.Account, TokenID: t.id, Actor: c.Actor,
		Data: events.TokenRenamed{OldName: c.Name, NewName: c.NewName},
	}}, nil
}

// decideRevoke removes every named live token, or refuses them all when one
// is unknown; the refusal names every unknown one. A name given twice is
// revoked once.
func decideRevoke(s *State, c Revoke, now time.Time, newID func() string) ([]events.Event, error) {
	if _, _, err := s.actingToken(c.Actor); err != nil {
		return nil, err
	}
	var evs []events.Event
	var unknown []string
	seen := make(map[string]bool, len(c.Names))
	for _, name := range c.Names {
		if seen[name] {
			continue
		}
		seen[name] = true
		t, ok := s.live[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		evs = append(evs, events.Event{
			ID: newID(), At: now, Account: c.Account, TokenID: t.id, Actor: c.Actor,
			Data: events.TokenRevoked{Name: name},
		})
	}
	if unknown != nil {
		return nil, events.Errorf(events.NotFound, "no token named %q", unknown[0]).About(c.Account, unknown...)
	}
	return slices.Clip(evs), nil
}
