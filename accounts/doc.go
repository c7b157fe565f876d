// Package accounts holds what a node knows of accounts apart from their
// tokens: their passwords, in an htpasswd file of bcrypt hashes that
// `tokenledger passwd` writes and a node reads again when it changes
// (Passwords, SetPassword), and the guard against guessing (Guard), which
// counts failed credentials by source and locks an account's password logins
// after repeated failures.
//
// It is a package of its own, not part of the HTTP transport that checks the
// passwords, so that the CLI's passwd and the NATS service, which reports its
// refused validations to the guard, depend on no transport.
package accounts
