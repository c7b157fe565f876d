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
package events
