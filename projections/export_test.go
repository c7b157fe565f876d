package projections

import "tokenledger/events"

// HoldsEarlyUse says whether tab holds a last use of the token tokenID,
// whose creation it has not applied yet: for the watcher's test, outside
// the package.
func HoldsEarlyUse(tab *Table, tokenID events.TokenID) bool {
	tab.mu.RLock()
	defer tab.mu.RUnlock()
	_, ok := tab.early[tokenID]
	return ok
}
