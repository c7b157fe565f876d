package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/internal/atomicfile"
)

// keygen prints a new signing seed for nodes on stdout, so that the seed alone
// can be redirected to a file; on stderr it prints the seed's public key as a
// trusted-keys file, so that an auditor can save it as it is.
func (e *cli) keygen(_ context.Context, args []string) error {
	fs := e.flags("keygen")
	if err := e.parse(fs, args, 0); err != nil {
		return err
	}
	seed, err := access.NewSeed()
	if err != nil {
		return err
	}
	signer, err := access.NewSigner(seed)
	if err != nil {
		return err
	}
	e.stderr.Write(access.FormatTrustedKeys("public key of the signing seed on stdout: save these lines as a --trusted-keys file", signer.PublicKey()))
	_, err = fmt.Fprintf(e.stdout, "%s\n", seed)
	return err
}

// publicKeyFile is where a node leaves its public key for auditors, in its
// data directory: a trusted-keys file that audit commands read by default.
const publicKeyFile = "signing.pub"

// auditTrust is what an audit command trusts: the keys of --trusted-keys, or
// else the node's own key in <data-dir>/signing.pub; keys is nil when neither
// is there, and then no signer is trusted.
type auditTrust struct {
	keys   *events.Trust
	n      int    // how many keys
	source string // the file the keys came from
}

// loadAuditTrust reads the keys of file (the value of --trusted-keys) or, when
// it is empty, those of the node whose data directory is dataDir, if it has
// written them there and this user may see them.
func loadAuditTrust(file, dataDir string) (auditTrust, error) {
	if file == "" {
		def := filepath.Join(dataDir, publicKeyFile)
		if _, err := os.Stat(def); err != nil {
			return auditTrust{}, nil
		}
		file = def
	}
	keys, err := access.ReadTrustedKeys(file)
	if err != nil {
		return auditTrust{}, usageErrorf("--trusted-keys: %s", trustedKeysError(err))
	}
	if len(keys) == 0 {
		return auditTrust{}, usageErrorf("--trusted-keys %s: no key in the file", file)
	}
	trust, err := access.NewTrust(keys...)
	if err != nil {
		return auditTrust{}, usageErrorf("--trusted-keys %s: %v", file, events.ErrorMessage(err))
	}
	return auditTrust{keys: trust, n: len(keys), source: file}, nil
}

// trustedKeysError is why a trusted-keys file could not be read.
func trustedKeysError(err error) string {
	if events.ErrorCode(err) == events.Invalid {
		return events.ErrorMessage(err)
	}
	return err.Error() // the file's own error: missing, unreadable
}

// errNoTrust is why an event counts as untrusted when no key is trusted.
var errNoTrust = events.Errorf(events.Invalid, "signer not checked: no trusted keys")

// verify accepts an event signed by a trusted key. With no trusted keys it
// accepts none, but still says first what is wrong with a signature.
func (a auditTrust) verify(raw []byte, e events.Event) error {
	if a.keys != nil {
		return a.keys.Verify(raw, e)
	}
	if err := access.VerifySelfSigned(raw, e); err != nil {
		return err
	}
	return errNoTrust
}

// describe says what the audit checked signers against, for its output.
func (a auditTrust) describe(dataDir string) string {
	if a.keys == nil {
		return fmt.Sprintf("no trusted keys (no --trusted-keys FILE, and no readable %s)", filepath.Join(dataDir, publicKeyFile))
	}
	s := "s"
	if a.n == 1 {
		s = ""
	}
	return fmt.Sprintf("%d trusted key%s from %s", a.n, s, a.source)
}

// howToTrust tells an auditor with no trusted keys how to give some.
const howToTrust = "give --trusted-keys FILE (a node writes its key to signing.pub in its data directory; keygen prints one), or --data-dir of a node"

// untrusted counts the events an audit did not accept, by reason.
type untrusted struct {
	events  int
	reasons map[string]int
}

// check is trust.verify, counted.
func (u *untrusted) check(trust auditTrust, raw []byte, e events.Event) error {
	err := trust.verify(raw, e)
	if err != nil {
		if u.reasons == nil {
			u.reasons = make(map[string]int)
		}
		u.events++
		u.reasons[events.ErrorMessage(err)]++
	}
	return err
}

// String lists the reasons, the commonest first, at most three of them.
func (u *untrusted) String() string {
	reasons := make([]string, 0, len(u.reasons))
	for r := range u.reasons {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if u.reasons[reasons[i]] != u.reasons[reasons[j]] {
			return u.reasons[reasons[i]] > u.reasons[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	var parts []string
	for i, r := range reasons {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d more reasons", len(reasons)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", u.reasons[r], printable(r)))
	}
	return strings.Join(parts, "; ")
}

// keys loads the node's signing key, making one in the data directory on
// first start, and the keys it trusts: its own and those listed. It leaves
// the public key in the data directory (signing.pub) at every start, so that
// an auditor there trusts this node's events by default, and a key given
// with --signing-key replaces that of an earlier start.
func (c *serveConfig) keys() (*events.Signer, *events.Trust, error) {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, nil, err
	}
	path := c.SigningKey
	if path == "" {
		path = filepath.Join(c.DataDir, "signing.nk")
	}
	seed, err := access.LoadOrCreateSeed(path)
	if err != nil {
		return nil, nil, usageErrorf("--signing-key %s: %v", path, err)
	}
	signer, err := access.NewSigner(seed)
	if err != nil {
		return nil, nil, usageErrorf("--signing-key %s: %v", path, events.ErrorMessage(err))
	}
	pub := filepath.Join(c.DataDir, publicKeyFile)
	if err := atomicfile.Write(pub, access.FormatTrustedKeys("public key of the tokenledger node whose data directory holds this file: a --trusted-keys file for history, replay and verify", signer.PublicKey()), 0o644); err != nil {
		return nil, nil, fmt.Errorf("writing the node's public key: %w", err)
	}
	keys := []string{signer.PublicKey()}
	if c.TrustedKeys != "" {
		more, err := access.ReadTrustedKeys(c.TrustedKeys)
		if err != nil {
			return nil, nil, usageErrorf("--trusted-keys: %s", trustedKeysError(err))
		}
		keys = append(keys, more...)
	}
	trust, err := access.NewTrust(keys...)
	if err != nil {
		return nil, nil, usageErrorf("--trusted-keys %s: %v", c.TrustedKeys, events.ErrorMessage(err))
	}
	return signer, trust, nil
}
