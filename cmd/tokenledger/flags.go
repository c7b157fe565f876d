package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"time"

	"tokenledger/events"
)

// clientConfig is what every client command needs to reach the ledger.
type clientConfig struct {
	NATS string
	// DataDir is a node's directory: the node keeps its store, keys and
	// role credentials there, and a client on the same machine finds the
	// operator's credentials and the node's public key in it.
	DataDir  string
	NKey     string // nkey seed file of the identity to connect as
	Creds    string
	User     string
	Password string
	CA       string
	Stream   string
	Prefix   string
	TZ       string
	JSON     bool
}

// defaultNATS is where a client looks for the ledger when told nothing else:
// the embedded server of `tokenledger serve` on this machine.
const defaultNATS = "nats://127.0.0.1:4222"

func (c *clientConfig) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.NATS, "nats", envOr(getenv, "TOKENLEDGER_NATS", defaultNATS), "NATS URL(s) of the ledger, comma separated (env TOKENLEDGER_NATS)")
	fs.StringVar(&c.DataDir, "data-dir", envOr(getenv, "TOKENLEDGER_DATA_DIR", "./data"), "the node's data directory: its store, keys and role credentials (env TOKENLEDGER_DATA_DIR)")
	fs.StringVar(&c.NKey, "nkey", getenv("TOKENLEDGER_NKEY"), "nkey seed file to connect as (default: the operator's, <data-dir>/creds/operator.nk, when it exists; see 'tokenledger creds') (env TOKENLEDGER_NKEY)")
	fs.StringVar(&c.Creds, "nats-creds", getenv("TOKENLEDGER_NATS_CREDS"), "NATS credentials file (env TOKENLEDGER_NATS_CREDS)")
	fs.StringVar(&c.User, "nats-user", getenv("TOKENLEDGER_NATS_USER"), "NATS user (env TOKENLEDGER_NATS_USER)")
	fs.StringVar(&c.Password, "nats-password", getenv("TOKENLEDGER_NATS_PASSWORD"), "NATS password (env TOKENLEDGER_NATS_PASSWORD)")
	fs.StringVar(&c.CA, "nats-ca", getenv("TOKENLEDGER_NATS_CA"), "CA certificate (PEM) to verify NATS servers over TLS (env TOKENLEDGER_NATS_CA)")
	fs.StringVar(&c.Stream, "stream", "TOKENS", "JetStream stream of the events")
	fs.StringVar(&c.Prefix, "subject-prefix", "tokens", "subject prefix of the events and the service")
	fs.StringVar(&c.TZ, "tz", getenv("TOKENLEDGER_TZ"), "time zone of dates and tables, e.g. Europe/Berlin (default the machine's)")
}

func (c *clientConfig) location() (*time.Location, error) {
	if c.TZ == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(c.TZ)
	if err != nil {
		return nil, usageErrorf("--tz %q: unknown time zone", c.TZ)
	}
	return loc, nil
}

func (c *clientConfig) streamConfig() events.Config {
	cfg := events.DefaultConfig()
	cfg.Stream, cfg.Prefix = c.Stream, c.Prefix
	return cfg
}

func envOr(getenv func(string) string, key, fallback string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return fallback
}

// newFlagSet makes a flag set whose errors are usage errors and whose help
// goes to stderr.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tokenledger "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args and refuses stray positional arguments unless allowed.
func parse(fs *flag.FlagSet, args []string, positional int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageErrorf("%s -h: help shown above", fs.Name())
		}
		return usageErrorf("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > positional {
		return usageErrorf("%s: unexpected argument %q (flags go before arguments)", fs.Name(), fs.Arg(positional))
	}
	return nil
}

// names is a repeatable --name flag.
type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

// parseInstant reads an RFC 3339 instant given on the command line.
func parseInstant(flagName, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usageErrorf("--%s %q: want an RFC 3339 instant such as 2026-11-23T10:00:00Z", flagName, v)
	}
	return t, nil
}

func checkInput(err error) error {
	if err != nil {
		return usageErrorf("%s", events.ErrorMessage(err))
	}
	return nil
}
