// Package events is tokenledger's vocabulary: the facts that change a token
// table (TokenCreated, TokenRenamed, TokenRevoked, and since the first
// release TokenRotated, AllowedIPsSet, TokenUsed and FeaturesSet), their
// signed and chained JSON envelope as auditors read it, and the event log in
// plain terms: the subject scheme <prefix>.events.<account>.<token_id>, what
// a read gives back (Msg), and what is kept beside the stream (Snapshot,
// LastUse).
//
// Everything else in the project speaks in these terms: commands decide which
// events to append, projections fold them into tables, and the JetStream
// adapter (package jetstream) stores and reads them. The package also holds
// the domain rules that every layer checks the same way (account, token and
// feature names, secrets and their hashes), the signing of events with a
// node's Ed25519 key (whose nkey text forms package access reads), and the
// error type with codes that each transport maps to its own form. It
// imports no NATS package, so that what it defines can be read, tested and
// replayed without a server.
//
// Values travel typed: a secret's hash is a Hash, a token's id a TokenID, an
// allow-list entry a Prefix, each with the text form the event's JSON has
// always held. They are parsed once where they come in (a transport reading
// a request, a command drawing a token id, the decoder) and reach decide,
// apply, the table and the replies as they are. Three stay strings, each
// for the reason beside it: Actor.TokenID, TokenUsed.IP, LastUse.TokenID.
//
// Adding an event type is one change per concern. Here, in event.go: its
// Type constant (fixed once written: auditors match on it), its Data
// struct (field order is the JSON's order, and a field added later is
// omitempty so that older events keep their bytes), and beside the struct
// its methods: eventType, Label and Bears (how history shows it), scan (the
// hand-written reader, in field order) and check; then one line in
// dataTypes. Elsewhere: the decision in commands/decide.go (a command, its
// decide function, and a case in State.Evolve if it changes what decisions
// read), its effect in the one switch of projections/table.go
// (Table.change, or apply for a creation), and its row in docs/events.md.
// No other code names event types; the tests that go through every
// registered type (TestEveryTypeShows, cmd/tokenledger's
// TestHistoryNamesEveryType, the fast-path tests' canonicalEvents) fail
// until the new one has its case.
package events
