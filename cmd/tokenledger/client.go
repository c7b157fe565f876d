package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"tokenledger/events"
	"tokenledger/natsapi"
)

// operator is the actor recorded for commands given on the command line.
func operator() *events.Actor {
	name := "operator"
	if u, err := user.Current(); err == nil && u.Username != "" && len(u.Username) <= 64 {
		name = u.Username
	}
	return &events.Actor{Kind: events.ActorOperator, Name: name}
}

func (e *cli) create(ctx context.Context, args []string) error {
	var cfg clientConfig
	var account, name, expires, expiresAt string
	var allowIPs, features names
	var readOnly bool
	fs := e.flags("create")
	cfg.register(fs)
	fs.StringVar(&account, "account", "", "account that owns the token")
	fs.StringVar(&name, "name", "", "token name: 1-50 of A-Z a-z 0-9 - _")
	fs.StringVar(&expires, "expires", "", "expiry date YYYY-MM-DD (23:59:59 that day in --tz)")
	fs.StringVar(&expiresAt, "expires-at", "", "expiry instant in Unix seconds")
	fs.Var(&allowIPs, "allow-ip", "an address or CIDR range the token may be used from (repeatable, up to 100; default any)")
	fs.Var(&features, "feature", "a feature the token may use, [a-z0-9][a-z0-9_.:-]{0,63} (repeatable, up to 64; default none: full access)")
	fs.BoolVar(&readOnly, "readonly", false, "the token may only do what changes nothing (validations that say they write are refused)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the token as JSON")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	if err := checkInput(events.CheckAccount(account)); err != nil {
		return err
	}
	if err := checkInput(events.CheckName(name)); err != nil {
		return err
	}
	if _, err := events.ParsePrefixes(allowIPs); err != nil {
		return checkInput(err)
	}
	if _, err := events.ParseFeatures(features); err != nil {
		return checkInput(err)
	}
	loc, err := cfg.location()
	if err != nil {
		return err
	}
	var exp *int64
	switch {
	case expires != "" && expiresAt != "":
		return usageErrorf("give --expires or --expires-at, not both")
	case expires != "":
		t, err := events.ParseDate(expires, loc)
		if err != nil {
			return checkInput(err)
		}
		x := t.Unix()
		exp = &x
	case expiresAt != "":
		x, err := strconv.ParseInt(expiresAt, 10, 64)
		if err != nil {
			return usageErrorf("--expires-at %q: want Unix seconds", expiresAt)
		}
		exp = &x
	}
	if exp != nil {
		if err := checkInput(events.CheckExpiry(*exp, time.Now().In(loc))); err != nil {
			return err
		}
	}
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error {
		tok, err := api.Create(ctx, natsapi.CreateRequest{Account: account, Name: name, ExpiresAt: exp, AllowedIPs: allowIPs,
			Features: features, ReadOnly: readOnly, Actor: operator()})
		if err != nil {
			return err
		}
		return e.showSecret(tok, cfg.JSON)
	})
}

// showSecret prints a new secret, the one time it is ever shown: alone, or
// with the token as JSON.
func (e *cli) showSecret(tok natsapi.NewToken, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(tok)
	}
	_, err := fmt.Fprintln(e.stdout, tok.Token)
	return err
}

func (e *cli) list(ctx context.Context, args []string) error {
	var cfg clientConfig
	var account string
	fs := e.flags("list")
	cfg.register(fs)
	fs.StringVar(&account, "account", "", "account whose tokens to list")
	fs.BoolVar(&cfg.JSON, "json", false, "print a JSON array")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	if err := checkInput(events.CheckAccount(account)); err != nil {
		return err
	}
	loc, err := cfg.location()
	if err != nil {
		return err
	}
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error {
		toks, err := api.List(ctx, account)
		if err != nil {
			return err
		}
		return printTokens(e.stdout, toks, cfg.JSON, loc)
	})
}

// printTokens writes tokens as list does: a table, or a JSON array.
func printTokens(w io.Writer, toks []natsapi.TokenInfo, asJSON bool, loc *time.Location) error {
	if asJSON {
		if toks == nil {
			toks = []natsapi.TokenInfo{}
		}
		return json.NewEncoder(w).Encode(toks)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCREATED\tEXPIRES\tSTATUS\tFEATURES\tREADONLY")
	for _, t := range toks {
		fmt.Fprintln(tw, tokenRow(t, loc))
	}
	return tw.Flush()
}

// printAccounts writes several accounts' tokens as one table.
func printAccounts(w io.Writer, all map[string][]natsapi.TokenInfo, order []string, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tNAME\tCREATED\tEXPIRES\tSTATUS\tFEATURES\tREADONLY")
	for _, a := range order {
		for _, t := range all[a] {
			fmt.Fprintln(tw, a+"\t"+tokenRow(t, loc))
		}
	}
	return tw.Flush()
}

// tokenRow is a token's row of the list table: the four columns scripts
// have always read (NAME CREATED EXPIRES STATUS), then FEATURES (<all> for a
// token with full access: no feature name has < or >) and READONLY.
func tokenRow(t natsapi.TokenInfo, loc *time.Location) string {
	expires := "never"
	if t.ExpiresAt != nil {
		expires = time.Unix(*t.ExpiresAt, 0).In(loc).Format(time.RFC3339)
	}
	features := "<all>"
	if len(t.Features) > 0 {
		features = printable(strings.Join(t.Features, ","))
	}
	readOnly := "no"
	if t.ReadOnly != 0 {
		readOnly = "yes"
	}
	return t.Name + "\t" + time.Unix(t.CreateTime, 0).In(loc).Format(time.RFC3339) + "\t" + expires + "\t" + t.Status + "\t" + features + "\t" + readOnly
}

func (e *cli) rename(ctx context.Context, args []string) error {
	var cfg clientConfig
	var r natsapi.RenameRequest
	fs := e.flags("rename")
	cfg.register(fs)
	fs.StringVar(&r.Account, "account", "", "account that owns the token")
	fs.StringVar(&r.Name, "name", "", "the token's current name")
	fs.StringVar(&r.NewName, "new-name", "", "the token's new name")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	for _, err := range []error{events.CheckAccount(r.Account), events.CheckName(r.Name), events.CheckName(r.NewName)} {
		if err := checkInput(err); err != nil {
			return err
		}
	}
	if r.Name == r.NewName {
		return usageErrorf("--new-name must differ from --name")
	}
	r.Actor = operator()
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error { return api.Rename(ctx, r) })
}

func (e *cli) revoke(ctx context.Context, args []string) error {
	var cfg clientConfig
	var r natsapi.RevokeRequest
	fs := e.flags("revoke")
	cfg.register(fs)
	fs.StringVar(&r.Account, "account", "", "account that owns the tokens")
	fs.Var((*names)(&r.Names), "name", "name of a token to revoke (repeatable: all or nothing)")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	if err := checkInput(events.CheckAccount(r.Account)); err != nil {
		return err
	}
	if len(r.Names) == 0 {
		return usageErrorf("give at least one --name")
	}
	for _, n := range r.Names {
		if err := checkInput(events.CheckName(n)); err != nil {
			return err
		}
	}
	r.Actor = operator()
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error { return api.Revoke(ctx, r) })
}

func (e *cli) validate(ctx context.Context, args []string) error {
	var cfg clientConfig
	var account, ip string
	var features names
	var write bool
	fs := e.flags("validate")
	cfg.register(fs)
	fs.StringVar(&account, "account", "", "the account that must own the token")
	fs.StringVar(&ip, "ip", "", "the address the token is used from, for tokens with an allow-list")
	fs.Var(&features, "feature", "a feature the use needs (repeatable): a token with features but not this one is refused as feature_denied")
	fs.BoolVar(&write, "write", false, "the use changes something: a read-only token is refused as read_only")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: tokenledger validate [--account A] [--ip ADDR] [--feature F ...] [--write] TOKEN|-\n\n"+
			"Asks the ledger whether TOKEN is valid, and may be used for the features\n"+
			"named and, with --write, for a change. Give - to read the token from stdin\n"+
			"(one line), so that it shows neither in ps nor in the shell's history.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("validate: give the token as the one argument, or - to read it from stdin")
	}
	if account != "" {
		if err := checkInput(events.CheckAccount(account)); err != nil {
			return err
		}
	}
	if _, err := events.ParseFeatures(features); err != nil {
		return checkInput(err)
	}
	token := fs.Arg(0)
	if token == "-" {
		// One line, and no more than a token could be: a secret is 32 bytes.
		line, err := bufio.NewReader(io.LimitReader(e.stdin, 1024)).ReadString('\n')
		if err != nil && err != io.EOF {
			return usageErrorf("validate -: reading the token from stdin: %v", err)
		}
		if token = strings.TrimSpace(line); token == "" {
			return usageErrorf("validate -: no token on stdin")
		}
	}
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error {
		rep, err := api.ValidateFrom(ctx, natsapi.ValidateRequest{Token: token, Account: account, IP: ip, Features: features, Write: write})
		if err != nil {
			return err
		}
		if err := json.NewEncoder(e.stdout).Encode(rep); err != nil {
			return err
		}
		if !rep.Valid {
			return errSilent
		}
		return nil
	})
}

func (e *cli) rotate(ctx context.Context, args []string) error {
	var cfg clientConfig
	var r natsapi.RotateRequest
	var grace time.Duration
	fs := e.flags("rotate")
	cfg.register(fs)
	fs.StringVar(&r.Account, "account", "", "account that owns the token")
	fs.StringVar(&r.Name, "name", "", "the token's name")
	fs.DurationVar(&grace, "grace", 0, "how long the old secret keeps working, e.g. 24h (default: it stops at once)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the token as JSON")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	for _, err := range []error{events.CheckAccount(r.Account), events.CheckName(r.Name)} {
		if err := checkInput(err); err != nil {
			return err
		}
	}
	if grace < 0 || grace%time.Second != 0 {
		return usageErrorf("--grace must be a whole number of seconds, not negative")
	}
	r.GraceSeconds, r.Actor = int64(grace/time.Second), operator()
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error {
		tok, err := api.Rotate(ctx, r)
		if err != nil {
			return err
		}
		return e.showSecret(tok, cfg.JSON)
	})
}

func (e *cli) setAllowedIPs(ctx context.Context, args []string) error {
	var cfg clientConfig
	var r natsapi.SetAllowedIPsRequest
	var allow names
	fs := e.flags("set-allowed-ips")
	cfg.register(fs)
	fs.StringVar(&r.Account, "account", "", "account that owns the token")
	fs.StringVar(&r.Name, "name", "", "the token's name")
	fs.Var(&allow, "allow-ip", "an address or CIDR range the token may be used from (repeatable; none: any address)")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	for _, err := range []error{events.CheckAccount(r.Account), events.CheckName(r.Name)} {
		if err := checkInput(err); err != nil {
			return err
		}
	}
	if _, err := events.ParsePrefixes(allow); err != nil {
		return checkInput(err)
	}
	r.AllowedIPs, r.Actor = append([]string{}, allow...), operator()
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error { return api.SetAllowedIPs(ctx, r) })
}

func (e *cli) setFeatures(ctx context.Context, args []string) error {
	var cfg clientConfig
	var r natsapi.SetFeaturesRequest
	var features names
	fs := e.flags("set-features")
	cfg.register(fs)
	fs.StringVar(&r.Account, "account", "", "account that owns the token")
	fs.StringVar(&r.Name, "name", "", "the token's name")
	fs.Var(&features, "feature", "a feature the token may use (repeatable, up to 64; none: full access again)")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	for _, err := range []error{events.CheckAccount(r.Account), events.CheckName(r.Name)} {
		if err := checkInput(err); err != nil {
			return err
		}
	}
	if _, err := events.ParseFeatures(features); err != nil {
		return checkInput(err)
	}
	r.Features, r.Actor = append([]string{}, features...), operator()
	return cfg.withClient(ctx, func(ctx context.Context, api *natsapi.Client) error { return api.SetFeatures(ctx, r) })
}
