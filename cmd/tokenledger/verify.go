package main

import (
	"context"
	"fmt"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// verify checks every event as a node would: by default against the keys an
// auditor trusts. With no trusted keys it still checks each signature against
// the key its event names, but that proves only that the event is intact, so
// it fails unless the auditor asked for just that (--signatures-only).
func (e *cli) verify(ctx context.Context, args []string) error {
	var cfg clientConfig
	var account, trusted string
	var sigsOnly bool
	fs := e.flags("verify")
	cfg.register(fs)
	fs.StringVar(&account, "account", "", "only this account's chain")
	fs.StringVar(&trusted, "trusted-keys", "", "file of node public keys to trust, one a line (default <data-dir>/signing.pub, the node's own)")
	fs.BoolVar(&sigsOnly, "signatures-only", false, "check each signature against the key its event names, trusting no key: shows that events are intact, not who wrote them")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	if account != "" {
		if err := checkInput(events.CheckAccount(account)); err != nil {
			return err
		}
	}
	var trust auditTrust
	if sigsOnly {
		if flagGiven(fs, "trusted-keys") {
			return usageErrorf("verify: give --trusted-keys or --signatures-only, not both")
		}
	} else {
		var err error
		if trust, err = loadAuditTrust(trusted, cfg.DataDir); err != nil {
			return err
		}
	}
	verify := trust.verify
	if trust.keys == nil {
		verify = access.VerifySelfSigned
	}
	bar := newProgress(e.stderr)
	return cfg.withStream(ctx, func(ctx context.Context, s *jetstream.Stream) error {
		c, err := projections.Verify(ctx, s, account, verify, bar.update)
		bar.done()
		if err != nil {
			return err
		}
		for _, p := range c.Problems {
			fmt.Fprintf(e.stdout, "BAD seq %d account %s: %s\n", p.Seq, orDash(p.Account), printable(p.Reason))
		}
		fmt.Fprintf(e.stdout, "checked %d events in %d accounts: %d bad\n", c.Events, c.Accounts, len(c.Problems))
		const unchecked = "each signature was checked against the key its event names, which shows that the event is intact, not that a node you trust wrote it"
		switch {
		case trust.keys != nil:
			fmt.Fprintf(e.stdout, "signers checked against %s\n", trust.describe(cfg.DataDir))
		case sigsOnly:
			fmt.Fprintf(e.stdout, "note: signers were not checked (--signatures-only): %s\n", unchecked)
		default:
			fmt.Fprintf(e.stdout, "note: signers were not checked: %s; %s\n", trust.describe(cfg.DataDir), unchecked)
			fmt.Fprintf(e.stderr, "tokenledger: verify: signers were not checked: %s; or --signatures-only to check signatures alone\n", howToTrust)
			return errSilent
		}
		if len(c.Problems) > 0 {
			return errSilent
		}
		return nil
	})
}

// orDash shows an empty field as "-", so that columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
