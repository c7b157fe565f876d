// Package retry asks again: one policy, written down, for the requests that
// tokenledger sends across the network and that may go unanswered or be
// refused for a moment while a cluster heals (a lost server, a new stream
// leader, a node catching up). JetStream reads (package jetstream), the
// node's start-up beside a clustered JetStream (package node) and the
// service client's validations, lists and commands (package natsapi) each
// declare a Policy as a named value, with its numbers and the reason for
// them beside it, and run their request through Do.
//
// The one rule they share: an attempt is bounded (Policy.Attempt), and one
// left unanswered that long is asked again at once, since it has waited
// already and the next request may reach another server or member; a
// failure that was answered is asked again only when the policy says it
// passes (Policy.Again), after a pause that grows. All of it ends with the
// caller's context.
//
// Not here, on purpose: a retry that decides again rather than asks again
// (commands' optimistic concurrency, the client's list that restarts when
// its cursor is revoked), which is the domain's and bounded by attempts,
// not time; and nats.go's own retries (reconnects, the ordered consumer's
// recreation), which are configured where they are used.
//
// Hand-written rather than github.com/cenkalti/backoff: its policies have no
// bound on one attempt, which is the point of all three callers, and Do is
// some forty lines.
package retry
