// Package projections is tokenledger's read side: the current token table,
// which answers list and validate from memory, and the audit history, both
// folded from the event stream.
//
// Apply is the one place state changes; it has no error and no I/O, so a node
// that restarts and replays the stream builds exactly the same table, and an
// auditor's replay "as of" an instant is the same fold stopped early. Status
// (active, expiring, expired) is never stored: it is derived from the expiry
// and the reader's clock each time a token is read.
package projections
