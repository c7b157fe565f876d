// Package node assembles a ledger node and runs its lifecycle: the one place
// that knows how the parts fit together, so that `tokenledger serve`, the
// tests and the benchmark build the same node, and a change to how a node is
// wired is made once.
//
// New connects the node to NATS (an embedded server it starts, or a cluster
// it joins), makes sure of the stream, and builds the table, the follower
// that feeds it, the ledger that takes commands and whatever parts Config
// asks for (the `tokens` service, HTTP, snapshots, last uses, notices). Run
// runs each actor as one block added to a group: when the first ends (the
// caller's context, most often), the others stop in the reverse order they
// started, and Run returns once every goroutine it started has ended and the
// connection and the embedded server are released. Nothing here reads a flag
// or the environment: package main turns those into a Config, loading the
// files it names (keys, passwords, the record of the stream seen), and keeps
// what belongs to one process (the data directory's lock, signals, the line
// that says the node is serving).
//
// The policy that decides when a node answers lives beside it, small enough
// to test without a node: a joined node's connection reconnects forever and
// stops answering while it is away (watchConnection, catchUp), and the
// `tokens` service has a connection of its own that it drops whenever the
// table may not be answered from, and makes anew once it may (serviceLoop,
// serviceConn).
package node
