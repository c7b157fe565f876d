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
//
// Regions (region.go). A hub node's embedded server takes leaf connections
// (Config.Hub); a regional node's embedded server is a leaf node of the hub
// with a JetStream domain of its own (Config.Region), keeps a mirror of the
// hub's stream there, and the node follows the mirror: validations never
// leave the region while its node is ready, and go on through an outage of
// the link. Its table is proven current against the hub's stream, not the
// mirror (projections.Origin), so a region cut off longer than
// --max-staleness stops answering; when the mirror lags the hub the table
// reads the gap from the hub.
//
// A regional node's commands are its own ledger's, decided and appended on
// the hub's stream through a JetStream context on the hub's domain
// (jetstream.Hub), rather than requests forwarded to hub nodes. So the
// account's optimistic concurrency stays on the one stream that is written,
// the events are signed by the node that decided them (its key, its actor),
// the HTTP API and the panel in the region work unchanged, a command reads
// its own write from the regional table (the ledger applies its event
// ahead, or waits for the mirror), and a command fails at once, as
// Unavailable naming the hub, when the leaf link is down: the node sees the
// link (embedded.HubLinked) and does not wait out a timeout. Forwarding
// would have needed hub nodes to be up to take any regional write, and a
// second path for HTTP. A region leaves expiry notices to the hub, keeps
// its own snapshots of its table and its own last-use records.
package node
