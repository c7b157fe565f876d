package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"tokenledger/events"
	"tokenledger/projections"
)

// keygen prints a new signing seed for nodes; its public key goes to stderr
// so that the seed alone can be redirected to a file.
func (e *cli) keygen(_ context.Context, args []string) error {
	fs := newFlagSet("keygen", e.stderr)
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	seed, err := events.NewSeed()
	if err != nil {
		return err
	}
	signer, err := events.NewSigner(seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "public key: %s\n", signer.PublicKey())
	_, err = fmt.Fprintf(e.stdout, "%s\n", seed)
	return err
}

// auditVerifier checks signatures against the listed keys, or, with no list,
// against the key each event names (which proves integrity, not trust).
func auditVerifier(trustedKeys string) (func([]byte, events.Event) error, error) {
	if trustedKeys == "" {
		return events.VerifySelfSigned, nil
	}
	keys, err := events.ReadTrustedKeys(trustedKeys)
	if err != nil {
		return nil, usageErrorf("--trusted-keys: %v", err)
	}
	trust, err := events.NewTrust(keys...)
	if err != nil {
		return nil, usageErrorf("--trusted-keys %s: %v", trustedKeys, events.ErrorMessage(err))
	}
	return trust.Verify, nil
}

func (e *cli) verify(ctx context.Context, args []string) error {
	var cfg clientConfig
	var account, trusted string
	fs := newFlagSet("verify", e.stderr)
	cfg.register(fs, e.getenv)
	fs.StringVar(&account, "account", "", "only this account's chain")
	fs.StringVar(&trusted, "trusted-keys", e.getenv("TOKENLEDGER_TRUSTED_KEYS"), "file of node public keys to trust, one a line (without it, each event is checked against the key it names)")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if account != "" {
		if err := checkInput(events.CheckAccount(account)); err != nil {
			return err
		}
	}
	verify, err := auditVerifier(trusted)
	if err != nil {
		return err
	}
	bar := newProgress(e.stderr)
	return cfg.withStream(ctx, func(ctx context.Context, s *events.Stream) error {
		c, err := projections.Verify(ctx, s, account, verify, bar.update)
		bar.done()
		if err != nil {
			return err
		}
		for _, p := range c.Problems {
			fmt.Fprintf(e.stdout, "BAD seq %d account %s: %s\n", p.Seq, orDash(p.Account), p.Reason)
		}
		fmt.Fprintf(e.stdout, "checked %d events in %d accounts: %d bad\n", c.Events, c.Accounts, len(c.Problems))
		if trusted == "" {
			fmt.Fprintln(e.stdout, "note: no --trusted-keys given, so signatures were checked against the keys the events name, not against a list you trust")
		}
		if len(c.Problems) > 0 {
			return errSilent
		}
		return nil
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// progress draws a bar on stderr when it is a terminal and the read is long.
type progress struct {
	out  *os.File
	last int
}

func newProgress(w any) *progress {
	f, ok := w.(*os.File)
	if !ok {
		return &progress{}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	return &progress{out: f}
}

func (p *progress) update(read int, pending uint64) {
	total := uint64(read) + pending
	if p.out == nil || total < 10000 {
		return
	}
	pct := int(uint64(read) * 100 / total)
	if pct == p.last && pending > 0 {
		return
	}
	p.last = pct
	const width = 40
	fill := pct * width / 100
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < fill {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(p.out, "\r[%s] %3d%% %d/%d events", bar, pct, read, total)
}

func (p *progress) done() {
	if p.out != nil && p.last > 0 {
		fmt.Fprintln(p.out)
	}
}

// keys loads the node's signing key, making one in the data directory on
// first start, and the keys it trusts: its own and those listed.
func (c *serveConfig) keys() (*events.Signer, *events.Trust, error) {
	path := c.SigningKey
	if path == "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, nil, err
		}
		path = filepath.Join(c.DataDir, "signing.nk")
	}
	seed, err := events.LoadOrCreateSeed(path)
	if err != nil {
		return nil, nil, usageErrorf("--signing-key %s: %v", path, err)
	}
	signer, err := events.NewSigner(seed)
	if err != nil {
		return nil, nil, usageErrorf("--signing-key %s: %v", path, events.ErrorMessage(err))
	}
	keys := []string{signer.PublicKey()}
	if c.TrustedKeys != "" {
		more, err := events.ReadTrustedKeys(c.TrustedKeys)
		if err != nil {
			return nil, nil, usageErrorf("--trusted-keys: %v", err)
		}
		keys = append(keys, more...)
	}
	trust, err := events.NewTrust(keys...)
	if err != nil {
		return nil, nil, usageErrorf("--trusted-keys %s: %v", c.TrustedKeys, events.ErrorMessage(err))
	}
	return signer, trust, nil
}
