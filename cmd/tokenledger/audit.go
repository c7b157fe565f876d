package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
	"tokenledger/natsapi"
	"tokenledger/projections"
)

// auditTimeout bounds a read of the stream by history or replay.
const auditTimeout = 10 * time.Minute

// withStream connects and opens the stream for reading only: an auditor needs
// no node and no write permission.
func (c *clientConfig) withStream(ctx context.Context, fn func(context.Context, *events.Stream) error) error {
	nc, err := c.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	stream, err := events.Open(ctx, js, c.streamConfig())
	if err != nil {
		return err
	}
	return fn(ctx, stream)
}

func (e *cli) history(ctx context.Context, args []string) error {
	var cfg clientConfig
	var f projections.HistoryFilter
	var since, until string
	var asCSV bool
	fs := newFlagSet("history", e.stderr)
	cfg.register(fs, e.getenv)
	fs.StringVar(&f.Account, "account", "", "only this account")
	fs.StringVar(&f.Name, "name", "", "only tokens that bore this name at any time")
	fs.StringVar(&f.TokenID, "token-id", "", "only this token")
	fs.StringVar(&since, "since", "", "only events stored at or after this RFC 3339 instant")
	fs.StringVar(&until, "until", "", "only events stored at or before this RFC 3339 instant")
	fs.BoolVar(&cfg.JSON, "json", false, "one event per line, exactly as stored")
	fs.BoolVar(&asCSV, "csv", false, "CSV for spreadsheets")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if f.Account != "" {
		if err := checkInput(events.CheckAccount(f.Account)); err != nil {
			return err
		}
	}
	if f.Name != "" {
		if err := checkInput(events.CheckName(f.Name)); err != nil {
			return err
		}
	}
	var err error
	if f.Since, err = parseInstant("since", since); err != nil {
		return err
	}
	if f.Until, err = parseInstant("until", until); err != nil {
		return err
	}
	if cfg.JSON && asCSV {
		return usageErrorf("give --json or --csv, not both")
	}
	loc, err := cfg.location()
	if err != nil {
		return err
	}
	return cfg.withStream(ctx, func(ctx context.Context, s *events.Stream) error {
		switch {
		case cfg.JSON:
			return projections.History(ctx, s, f, func(m events.Msg) error {
				_, err := fmt.Fprintf(e.stdout, "%s\n", m.Raw)
				return err
			})
		case asCSV:
			w := csv.NewWriter(e.stdout)
			w.Write([]string{"seq", "at", "type", "account", "token_id", "name", "actor_kind", "actor_name", "actor_token_id", "actor_remote"})
			err := projections.History(ctx, s, f, func(m events.Msg) error {
				ev := m.Event
				if m.Err != nil {
					return w.Write([]string{strconv.FormatUint(m.Seq, 10), m.Stored.In(loc).Format(time.RFC3339Nano), "invalid: " + m.Err.Error()})
				}
				return w.Write([]string{strconv.FormatUint(m.Seq, 10), ev.At.In(loc).Format(time.RFC3339Nano), ev.Type(), ev.Account, ev.TokenID,
					eventName(ev), ev.Actor.Kind, ev.Actor.Name, ev.Actor.TokenID, ev.Actor.Remote})
			})
			w.Flush()
			if err != nil {
				return err
			}
			return w.Error()
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "AT\tTYPE\tACCOUNT\tNAME\tACTOR")
		err := projections.History(ctx, s, f, func(m events.Msg) error {
			if m.Err != nil {
				_, err := fmt.Fprintf(tw, "%s\tinvalid\t-\t-\tseq %d: %v\n", m.Stored.In(loc).Format(time.RFC3339), m.Seq, m.Err)
				return err
			}
			ev := m.Event
			_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.At.In(loc).Format(time.RFC3339), ev.Type(), ev.Account, eventName(ev), actorText(ev.Actor))
			return err
		})
		if ferr := tw.Flush(); err == nil {
			err = ferr
		}
		return err
	})
}

// eventName is the NAME column: the token's name, or old->new for a rename.
func eventName(e events.Event) string {
	switch d := e.Data.(type) {
	case events.TokenCreated:
		return d.Name
	case events.TokenRenamed:
		return d.OldName + "->" + d.NewName
	case events.TokenRevoked:
		return d.Name
	}
	return ""
}

func actorText(a events.Actor) string {
	s := a.Kind + ":" + a.Name
	if a.TokenID != "" {
		s += "/" + a.TokenID
	}
	if a.Remote != "" {
		s += "@" + a.Remote
	}
	return s
}

func (e *cli) replay(ctx context.Context, args []string) error {
	var cfg clientConfig
	var account, asOf, trusted string
	fs := newFlagSet("replay", e.stderr)
	cfg.register(fs, e.getenv)
	fs.StringVar(&trusted, "trusted-keys", e.getenv("TOKENLEDGER_TRUSTED_KEYS"), "file of node public keys to trust (without it, each event is checked against the key it names)")
	fs.StringVar(&account, "account", "", "only this account")
	fs.StringVar(&asOf, "as-of", "", "the RFC 3339 instant to replay to")
	fs.BoolVar(&cfg.JSON, "json", false, "print a JSON array")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if asOf == "" {
		return usageErrorf("replay: --as-of is required")
	}
	t, err := parseInstant("as-of", asOf)
	if err != nil {
		return err
	}
	if account != "" {
		if err := checkInput(events.CheckAccount(account)); err != nil {
			return err
		}
	}
	loc, err := cfg.location()
	if err != nil {
		return err
	}
	verify, err := auditVerifier(trusted)
	if err != nil {
		return err
	}
	return cfg.withStream(ctx, func(ctx context.Context, s *events.Stream) error {
		table, err := projections.AsOf(ctx, s, account, t, projections.DefaultWarn, verify)
		if err != nil {
			return err
		}
		if account != "" {
			return printTokens(e.stdout, natsapi.TokenInfos(table.List(account, t)), cfg.JSON, loc)
		}
		// Every account: JSON maps each account to its list; the table gains
		// an ACCOUNT column.
		all := make(map[string][]natsapi.TokenInfo)
		for _, a := range table.Accounts() {
			all[a] = natsapi.TokenInfos(table.List(a, t))
		}
		if cfg.JSON {
			return json.NewEncoder(e.stdout).Encode(all)
		}
		return printAccounts(e.stdout, all, table.Accounts(), loc)
	})
}
