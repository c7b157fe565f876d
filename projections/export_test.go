package projections

import (
	"testing"

	"tokenledger/events"
)

// HoldsEarlyUse says whether tab holds a last use of the token tokenID,
// whose creation it has not applied yet: for the watcher's test, outside
// the package.
func HoldsEarlyUse(tab *Table, tokenID events.TokenID) bool {
	tab.mu.RLock()
	defer tab.mu.RUnlock()
	_, ok := tab.early[tokenID]
	return ok
}

// Fixture is the package tests' fixture, for tests outside the package:
// events with predictable ids, each account's chained as they are applied.
type Fixture = fixture

// Create is fixture.create.
func (f *fixture) Create(account, name, secret string) events.Event {
	return f.create(account, name, secret, nil)
}

// Apply is fixture.apply.
func (f *fixture) Apply(t *testing.T, tab *Table, seq uint64, e events.Event) {
	f.apply(t, tab, seq, e)
}

// T0 is the instant the fixture's events happen at.
var T0 = t0

// SnapshotMagic is the snapshot format's first line, for tests that write
// a header by hand.
const SnapshotMagic = snapshotMagic
