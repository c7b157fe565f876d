// Package natsapi is tokenledger's NATS transport: the `tokens` micro service
// that every node runs in the queue group `tokens` (validate and the commands,
// docs/nats.md), and the client the CLI uses to reach it.
//
// Validation answers from the node's in-memory table with no NATS round trip
// of its own; commands go through the commands package, so the CLI, the HTTP
// API and any other program share one write path and only nodes append.
//
// It follows NATS micro's conventions, so that `nats micro stats` and
// generic micro clients see what a node refused: every refusal carries the
// headers Nats-Service-Error and Nats-Service-Error-Code (see errorStatus)
// beside its JSON body. A list comes a page at a time (see ListRequest), as
// one NATS message holds at most the server's max_payload.
//
// Like httpapi it declares the little it needs of the node (Ledger, Table,
// UseRecorder), and replies to a command from the ledger's answer alone,
// never from a second read of the table. The commands share one handler,
// handle, each with its own pieces: read the request, build the ledger's
// command, do it. Validate and list are handlers of their own, answered in
// the endpoint's goroutine: validate is the hot path, kept to a parse, a
// hash, a lookup and an append, and measured by make bench.
//
// A validation may ask for a feature and for a write (see ValidateRequest),
// and a command refuses a member it does not know (see decode): a limit that
// the service cannot read is refused, never skipped.
package natsapi
