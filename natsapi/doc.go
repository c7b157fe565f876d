// Package natsapi is tokenledger's NATS transport: the `tokens` micro service
// that every node runs in the queue group `tokens` (validate and the commands,
// shared/CONTRACT.md section 4), and the client the CLI uses to reach it.
//
// Validation answers from the node's in-memory table with no NATS round trip
// of its own; commands go through the commands package, so the CLI, the HTTP
// API and any other program share one write path and only nodes append.
package natsapi
