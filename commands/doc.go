// Package commands is tokenledger's write side: create, rename, revoke,
// rotate, and the changes of a token's allow-list and features.
//
// Each command is checked (bad input never reaches NATS), then decided against
// the account's current state by a pure function (decide.go), and the events it
// yields are appended with optimistic concurrency over the whole account, so two
// nodes racing on one account cannot both win. The loser re-reads the account
// and decides again, a bounded number of times, and then reports a conflict.
// A decision also keeps the one rule of who may give what: a token acting on
// its own account (over the HTTP API) gives no more features than it has, and
// a read-only token changes nothing. The I/O lives in ledger.go; it declares
// the little it needs of the event log (Log) and of the node's projection
// (Projection).
package commands
