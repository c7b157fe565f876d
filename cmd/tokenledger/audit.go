package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"tokenledger/events"

	"tokenledger/jetstream"
	"tokenledger/natsapi"
	"tokenledger/projections"
)

// auditTimeout bounds a read of the stream by history or replay.
const auditTimeout = 10 * time.Minute

// history prints the audit history. Each event is checked against the keys
// the auditor trusts (see loadAuditTrust), and one that does not verify is
// marked UNTRUSTED in the table and false in the CSV's trusted column; --json
// gives the events exactly as stored, unchecked, for programs.
func (e *cli) history(ctx context.Context, args []string) error {
	var cfg clientConfig
	var f projections.HistoryFilter
	var since, until, trusted string
	var asCSV bool
	fs := e.flags("history")
	cfg.register(fs)
	fs.StringVar(&f.Account, "account", "", "only this account")
	fs.StringVar(&f.Name, "name", "", "only tokens that bore this name at any time")
	fs.StringVar(&f.TokenID, "token-id", "", "only this token")
	fs.StringVar(&since, "since", "", "only events stored at or after this RFC 3339 instant")
	fs.StringVar(&until, "until", "", "only events stored at or before this RFC 3339 instant")
	fs.StringVar(&trusted, "trusted-keys", "", "file of node public keys to trust, one a line (default <data-dir>/signing.pub, the node's own); other events are marked UNTRUSTED")
	fs.BoolVar(&cfg.JSON, "json", false, "one event per line, exactly as stored (not checked)")
	fs.BoolVar(&asCSV, "csv", false, "CSV for spreadsheets")
	if err := e.parse(fs, args, 0); err != nil {
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
	if cfg.JSON {
		return cfg.withStream(ctx, func(ctx context.Context, s *jetstream.Stream) error {
			return projections.History(ctx, s, f, func(m events.Msg) error {
				_, err := fmt.Fprintf(e.stdout, "%s\n", m.Raw)
				return err
			})
		})
	}
	trust, err := loadAuditTrust(trusted, cfg.DataDir)
	if err != nil {
		return err
	}
	var bad untrusted
	err = cfg.withStream(ctx, func(ctx context.Context, s *jetstream.Stream) error {
		if asCSV {
			return historyCSV(ctx, s, f, e.stdout, loc, func(m events.Msg) error { return bad.check(trust, m.Raw, m.Event) })
		}
		return historyTable(ctx, s, f, e.stdout, loc, func(m events.Msg) error { return bad.check(trust, m.Raw, m.Event) })
	})
	if bad.events > 0 {
		fmt.Fprintf(e.stderr, "history: %d events are UNTRUSTED (checked against %s): %s\n", bad.events, trust.describe(cfg.DataDir), &bad)
		if trust.keys == nil {
			fmt.Fprintf(e.stderr, "history: %s\n", howToTrust)
		}
	}
	return err
}

// historyTable writes the history as a table; check says why an event is not
// to be trusted, and such an event's TYPE starts with UNTRUSTED.
func historyTable(ctx context.Context, s *jetstream.Stream, f projections.HistoryFilter, w io.Writer, loc *time.Location, check func(events.Msg) error) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tTYPE\tACCOUNT\tNAME\tACTOR")
	err := projections.History(ctx, s, f, func(m events.Msg) error {
		if m.Err != nil {
			_, err := fmt.Fprintf(tw, "%s\tinvalid\t-\t-\tseq %d: %s\n", m.Stored.In(loc).Format(time.RFC3339), m.Seq, printable(m.Err.Error()))
			return err
		}
		ev := m.Event
		typ := printable(ev.Type())
		if check(m) != nil {
			typ = "UNTRUSTED " + typ
		}
		_, err := io.WriteString(tw, historyRow(ev, typ, loc))
		return err
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// historyCSV writes the history as CSV, with whether each event is trusted
// and, when it is not, why.
func historyCSV(ctx context.Context, s *jetstream.Stream, f projections.HistoryFilter, out io.Writer, loc *time.Location, check func(events.Msg) error) error {
	w := csv.NewWriter(out)
	w.Write([]string{"seq", "at", "type", "account", "token_id", "name", "actor_kind", "actor_name", "actor_token_id", "actor_remote", "actor_via", "trusted", "problem"})
	err := projections.History(ctx, s, f, func(m events.Msg) error {
		seq := strconv.FormatUint(m.Seq, 10)
		if m.Err != nil {
			return w.Write([]string{seq, m.Stored.In(loc).Format(time.RFC3339Nano), "invalid", "", "", "", "", "", "", "", "", "false", printable(m.Err.Error())})
		}
		ev := m.Event
		trusted, problem := "true", ""
		if err := check(m); err != nil {
			trusted, problem = "false", events.ErrorMessage(err)
		}
		return w.Write([]string{seq, ev.At.In(loc).Format(time.RFC3339Nano), printable(ev.Type()), printable(ev.Account), ev.TokenID.String(),
			printable(ev.Data.Label()), printable(ev.Actor.Kind), printable(ev.Actor.Name), printable(ev.Actor.TokenID), printable(ev.Actor.Remote),
			printable(ev.Actor.Via), trusted, printable(problem)})
	})
	w.Flush()
	if err != nil {
		return err
	}
	return w.Error()
}

// historyRow is a decoded event's row of the history table: AT, TYPE (typ,
// which says whether the event is trusted), ACCOUNT, NAME (the token's name
// as the event's data labels it, old->new for a rename) and ACTOR.
func historyRow(ev events.Event, typ string, loc *time.Location) string {
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\n", ev.At.In(loc).Format(time.RFC3339), typ, printable(ev.Account), printable(ev.Data.Label()), actorText(ev.Actor))
}

// actorText is the ACTOR column, each part of it printable.
func actorText(a events.Actor) string {
	s := printable(a.Kind) + ":" + printable(a.Name)
	if a.TokenID != "" {
		s += "/" + printable(a.TokenID)
	}
	if a.Remote != "" {
		s += "@" + printable(a.Remote)
	}
	if a.Via != "" {
		s += " via " + printable(a.Via)
	}
	return s
}

// printable is s as it may go to a terminal or a spreadsheet: unchanged when
// every character of it is printable, else quoted with Go's escapes, so that
// what the stream holds (a forged event's, say) can neither move the cursor,
// colour the screen, nor break a row, and the reader sees that it is odd.
func printable(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// replay prints the table as it stood at an instant, built from the events
// signed by a key the auditor trusts (see loadAuditTrust); it says on stderr
// how many it left out and why, so that a short table is never taken for the
// whole story.
func (e *cli) replay(ctx context.Context, args []string) error {
	var cfg clientConfig
	var account, asOf, trusted string
	fs := e.flags("replay")
	cfg.register(fs)
	fs.StringVar(&trusted, "trusted-keys", "", "file of node public keys to trust, one a line (default <data-dir>/signing.pub, the node's own); other events are not applied")
	fs.StringVar(&account, "account", "", "only this account")
	fs.StringVar(&asOf, "as-of", "", "the RFC 3339 instant to replay to")
	fs.BoolVar(&cfg.JSON, "json", false, "print JSON: with --account an array as list --json prints, without it an object of such arrays by account")
	if err := e.parse(fs, args, 0); err != nil {
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
	trust, err := loadAuditTrust(trusted, cfg.DataDir)
	if err != nil {
		return err
	}
	var bad untrusted
	verify := func(raw []byte, ev events.Event) error { return bad.check(trust, raw, ev) }
	return cfg.withStream(ctx, func(ctx context.Context, s *jetstream.Stream) error {
		table, err := projections.AsOf(ctx, s, account, t, projections.DefaultWarn, verify)
		if err != nil {
			return err
		}
		if bad.events > 0 {
			fmt.Fprintf(e.stderr, "replay: skipped %d untrusted events, not applied (checked against %s): %s\n", bad.events, trust.describe(cfg.DataDir), &bad)
			if trust.keys == nil {
				fmt.Fprintf(e.stderr, "replay: %s\n", howToTrust)
			}
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
