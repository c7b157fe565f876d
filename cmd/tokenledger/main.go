// Command tokenledger runs a ledger node (serve) and is the client of one
// (create, list, rename, revoke, validate) and of the stream itself (history,
// replay). It only wires the packages together; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"tokenledger/events"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, errSilent) && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "tokenledger: "+oneLine(err.Error()))
	}
	os.Exit(exitCode(err))
}

const usage = `usage: tokenledger COMMAND [flags]

commands:
  serve      run a node (embedded NATS by default)
  create     create a token: --account A --name N [--expires YYYY-MM-DD | --expires-at UNIX] [--allow-ip CIDR ...]
             [--feature F ...] [--readonly] [--json]  (no --feature: full access)
  list       list an account's live tokens: --account A [--json]
  rename     rename a token: --account A --name OLD --new-name NEW
  revoke     revoke tokens, all or nothing: --account A --name N [--name N2 ...]
  rotate     give a token a new secret: --account A --name N [--grace DURATION] [--json]
  set-allowed-ips  replace a token's address allow-list: --account A --name N [--allow-ip CIDR ...]
  set-features     replace a token's features: --account A --name N [--feature F ...] (none: full access again)
  validate   ask whether a token is valid: [--account A] [--ip ADDR] [--feature F ...] [--write] TOKEN|-
             (- reads it from stdin)
  history    the audit history: [--account A] [--name N] [--token-id ID] [--since T] [--until T] [--json]
  replay     the table as of an instant: --as-of T [--account A] [--json] [--trusted-keys FILE]
  verify     check every signature and chain: [--account A] [--trusted-keys FILE]
  keygen     print a new signing seed for nodes
  creds      print a role's NATS credentials (an nkey seed file): node, service, operator, validator or auditor
  passwd     add or change an account's password for the HTTP API and panel: --accounts FILE ACCOUNT (password on stdin)

Clients connect as the operator whose credentials the node keeps in --data-dir
(./data), or as --nkey FILE. Every setting can come from an environment
variable, TOKENLEDGER_ and the flag's name in capitals (--data-dir:
TOKENLEDGER_DATA_DIR); a command's arguments (--account, --name, ...) cannot.
serve joins with its own TOKENLEDGER_SERVE_* variables. Run
'tokenledger COMMAND -h' for a command's flags and their variables.`

// run is the whole program; main only maps its error to an exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return usageErrorf("a command is required")
	}
	e := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return e.serve(ctx, rest)
	case "create":
		return e.create(ctx, rest)
	case "list":
		return e.list(ctx, rest)
	case "rename":
		return e.rename(ctx, rest)
	case "revoke":
		return e.revoke(ctx, rest)
	case "validate":
		return e.validate(ctx, rest)
	case "rotate":
		return e.rotate(ctx, rest)
	case "set-allowed-ips":
		return e.setAllowedIPs(ctx, rest)
	case "set-features":
		return e.setFeatures(ctx, rest)
	case "history":
		return e.history(ctx, rest)
	case "replay":
		return e.replay(ctx, rest)
	case "verify":
		return e.verify(ctx, rest)
	case "passwd":
		return e.passwd(rest)
	case "creds":
		return e.creds(rest)
	case "keygen":
		return e.keygen(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageErrorf("unknown command %q; run 'tokenledger help'", cmd)
}

// cli is the process's environment, passed in so tests can run the program
// in-process.
type cli struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// usageError is bad input or usage: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errSilent ends the program with status 1 when the output already said why
// (validate of an invalid token).
var errSilent = errors.New("silent")

// exitCode maps an error to the contract's exit statuses, in one table.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case errors.As(err, &u):
		return 2
	case errors.Is(err, errSilent):
		return 1
	}
	switch events.ErrorCode(err) {
	case events.Invalid:
		return 2
	case events.Unavailable:
		return 3
	}
	return 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
