// Package jetstream is tokenledger's event log on NATS JetStream: the one
// place that speaks JetStream, so that the vocabulary (package events), the
// write side (commands) and the read side (projections) link no NATS
// package and can be read, tested and replayed without a server.
//
// It wraps nats.go's jetstream package. Stream appends events to the
// append-only stream, each account's under optimistic concurrency on its
// last sequence, and a revoke of several names as one atomic batch; it
// reads them back as events.Msg, follows new ones, and checks that the
// stream is still the history a node has seen. Beside the stream it keeps
// the newest projection snapshot in an object store (Snapshots), once-only
// claims in a key-value bucket (Claims), and each token's last use in
// another (Used). It translates JetStream's failures once, at this edge,
// into events' error codes: a lost race on the expected sequence (10071,
// or 10164 on a replicated stream) is a Conflict, a server that does not
// answer or cannot store is Unavailable.
//
// For regions (mirror.go), EnsureMirror keeps a regional mirror of the
// hub's stream in the region's JetStream domain, and Hub is the hub's
// stream seen from a region, through the hub's domain: where a regional
// node's commands decide and append, and what proves its table current.
//
// Each type here satisfies the small interfaces its users declare where
// they use it (commands.Log, projections.Source, ...); the checks below
// say so at compile time.
package jetstream

import (
	"tokenledger/commands"
	"tokenledger/projections"
)

var (
	_ commands.Log              = (*Stream)(nil)
	_ commands.UseStore         = (*Used)(nil)
	_ projections.Source        = (*Stream)(nil)
	_ projections.Reader        = (*Stream)(nil)
	_ projections.StreamCheck   = (*Stream)(nil)
	_ projections.DigestSource  = (*Stream)(nil)
	_ projections.SnapshotStore = (*Snapshots)(nil)
	_ projections.Claimer       = (*Claims)(nil)
	_ projections.UseSource     = (*Used)(nil)
)

var (
	_ commands.Log       = (*Hub)(nil)
	_ projections.Origin = (*Hub)(nil)
)
