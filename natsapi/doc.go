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
// A validation may ask for a feature and for a write (see ValidateRequest),
// and a command refuses a member it does not know (see decode): a limit that
// the service cannot read is refused, never skipped.
package natsapi
