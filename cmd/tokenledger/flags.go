package main

import (
	"errors"
	"flag"
	"fmt"
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

func (c *clientConfig) register(fs *flagSet) {
	fs.StringVar(&c.NATS, "nats", defaultNATS, "NATS URL(s) of the ledger, comma separated")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "the node's data directory: its store, keys and role credentials")
	fs.StringVar(&c.NKey, "nkey", "", "nkey seed file to connect as (default: the operator's, <data-dir>/creds/operator.nk, when it exists; see 'tokenledger creds')")
	fs.StringVar(&c.Creds, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&c.User, "nats-user", "", "NATS user")
	fs.StringVar(&c.Password, "nats-password", "", "NATS password")
	fs.StringVar(&c.CA, "nats-ca", "", "CA certificate (PEM) to verify NATS servers over TLS")
	fs.StringVar(&c.Stream, "stream", "TOKENS", "JetStream stream of the events")
	fs.StringVar(&c.Prefix, "subject-prefix", "tokens", "subject prefix of the events and the service")
	fs.StringVar(&c.TZ, "tz", "", "time zone of dates and tables, e.g. Europe/Berlin (default the machine's)")
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

// flagSet is a command's flags. Each setting falls back on an environment
// variable, TOKENLEDGER_ and its name in capitals with _ for - (--data-dir:
// TOKENLEDGER_DATA_DIR) unless env names another, so that every setting of
// every command can come from the environment (a unit file, a container)
// and the help shows which variable; a flag on the command line wins. A
// command's arguments (see arguments) are command line only.
type flagSet struct {
	*flag.FlagSet
	command string
	envs    map[string]string // flag → variable, where not the usual name
	fromEnv map[string]bool   // flags set by their variable
}

// flags makes the flag set of a command.
func (e *cli) flags(command string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("tokenledger "+command, flag.ContinueOnError), command: command,
		envs: map[string]string{}, fromEnv: map[string]bool{}}
	fs.Usage = func() {
		some := false
		fs.VisitAll(func(*flag.Flag) { some = true })
		if !some {
			fmt.Fprintf(fs.Output(), "usage: tokenledger %s\n", command)
			return
		}
		fmt.Fprintf(fs.Output(), "usage: tokenledger %s [flags]\n\nflags:\n", command)
		fs.PrintDefaults()
	}
	return fs
}

// env gives flag name the environment variable variable; "" gives it none.
func (fs *flagSet) env(name, variable string) { fs.envs[name] = variable }

// arguments are the flags that say what one command is about (which
// account, which token, which output) rather than how to reach or run the
// ledger: they have no environment variable, so that one exported for an
// earlier command (TOKENLEDGER_NAME, say) cannot silently apply to the next.
var arguments = map[string]bool{
	"account": true, "name": true, "new-name": true, "expires": true, "expires-at": true, "allow-ip": true,
	"grace": true, "ip": true, "token-id": true, "since": true, "until": true, "as-of": true, "json": true,
	"csv": true, "signatures-only": true, "feature": true, "readonly": true, "write": true,
}

// envName is the environment variable of flag name, "" for none.
func (fs *flagSet) envName(name string) string {
	if v, ok := fs.envs[name]; ok {
		return v
	}
	if arguments[name] {
		return ""
	}
	return "TOKENLEDGER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// given says whether the flag was set, on the command line or by its
// environment variable, rather than left at its default.
func (fs *flagSet) given(name string) bool { return flagGiven(fs, name) || fs.fromEnv[name] }

// flagGiven says whether the command line set the flag (not its default or
// its environment variable).
func flagGiven(fs *flagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// errHelp ends the program with status 0 once a command's help is shown.
var errHelp = errors.New("help shown")

// parse reads args, then the environment for each flag args did not set,
// and refuses stray positional arguments unless allowed. -h or --help shows
// the command's flags on stdout; a flag it does not know, or a bad value, is
// one line on stderr that says where to look.
func (e *cli) parse(fs *flagSet, args []string, positional int) error {
	fs.VisitAll(func(f *flag.Flag) {
		if v := fs.envName(f.Name); v != "" {
			f.Usage += " (env " + v + ")"
		} else {
			f.Usage += " (command line only)"
		}
	})
	fs.SetOutput(io.Discard) // the flag package's own report is the whole usage
	err := fs.Parse(args)
	fs.SetOutput(e.stdout)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return errHelp
	}
	if err != nil {
		return usageErrorf("%s: %v; run 'tokenledger %s -h'", fs.command, err, fs.command)
	}
	var bad error
	fs.VisitAll(func(f *flag.Flag) {
		variable := fs.envName(f.Name)
		if variable == "" {
			return
		}
		v := e.getenv(variable)
		if v == "" || bad != nil || flagGiven(fs, f.Name) {
			return
		}
		if err := f.Value.Set(strings.TrimSpace(v)); err != nil {
			bad = usageErrorf("%s: %s=%q is not a valid --%s: %v", fs.command, variable, v, f.Name, err)
			return
		}
		fs.fromEnv[f.Name] = true
	})
	if bad != nil {
		return bad
	}
	if fs.NArg() > positional {
		return usageErrorf("%s: unexpected argument %q (flags go before arguments); run 'tokenledger %s -h'", fs.command, fs.Arg(positional), fs.command)
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
