// Package events is tokenledger's vocabulary and its stream: the facts that
// change a token table (TokenCreated, TokenRenamed, TokenRevoked, and since
// the first release TokenRotated, AllowedIPsSet, TokenUsed and FeaturesSet),
// their signed and chained JSON envelope as auditors read it, the subject
// scheme <prefix>.events.<account>.<token_id>, the append-only stream
// configuration, and the one place where JetStream is written to and read
// from (the stream, and beside it the snapshot object store and the claims
// bucket).
//
// Everything else in the project speaks in these terms: commands decide which
// events to append, projections fold them into tables. The package also holds
// the domain rules that every layer checks the same way (account, token and
// feature names, secrets and their hashes) and the error type with codes that
// each transport maps to its own form.
package events
