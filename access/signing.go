package access

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"tokenledger/events"
)

// A node signs its events with a key of its own, kept as an nkey server
// seed ("SN…", `tokenledger keygen` prints one), and names it in each event
// by its public key ("N…"). Package events signs and verifies with the
// Ed25519 keys themselves; this file reads and writes their nkey text forms,
// the one place that knows them, beside the roles' own nkey identities.

// NewSigner reads a seed as `tokenledger keygen` prints it.
func NewSigner(seed []byte) (*events.Signer, error) {
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return nil, events.Errorf(events.Invalid, "not a signing seed: %v", err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	if !nkeys.IsValidPublicServerKey(pub) {
		return nil, events.Errorf(events.Invalid, "the signing seed is not a node (server) key: make one with `tokenledger keygen`")
	}
	encoded, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	_, raw, err := nkeys.DecodeSeed(encoded)
	if err != nil || len(raw) != ed25519.SeedSize {
		return nil, events.Errorf(events.Invalid, "not a signing seed")
	}
	return events.NewSigner(ed25519.NewKeyFromSeed(raw), pub), nil
}

// NewSeed makes a fresh node signing seed.
func NewSeed() ([]byte, error) {
	kp, err := nkeys.CreateServer()
	if err != nil {
		return nil, err
	}
	return kp.Seed() // not wiped: the seed returned is the key pair's own
}

// LoadOrCreateSeed reads the seed in path, or makes one there (mode 0600)
// when the file does not exist yet.
func LoadOrCreateSeed(path string) ([]byte, error) {
	seed, err := os.ReadFile(path)
	if err == nil || !os.IsNotExist(err) {
		return seed, err
	}
	if seed, err = NewSeed(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		return nil, err
	}
	return seed, f.Close()
}

// NewTrust trusts the given node public keys.
func NewTrust(pubs ...string) (*events.Trust, error) {
	keys := make(map[string]ed25519.PublicKey, len(pubs))
	for _, p := range pubs {
		if !nkeys.IsValidPublicServerKey(p) {
			return nil, events.Errorf(events.Invalid, "%q is not a node public key", clip(p))
		}
		raw, err := nkeys.Decode(nkeys.PrefixByteServer, []byte(p))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, events.Errorf(events.Invalid, "%q is not a node public key", clip(p))
		}
		keys[p] = raw
	}
	return events.NewTrust(keys), nil
}

// VerifySelfSigned checks the signature against the key the event names,
// without asking whether that key is trusted: what an auditor can check with
// no list of keys.
func VerifySelfSigned(raw []byte, e events.Event) error {
	if e.Sig == "" || e.Signer == "" {
		return events.Errorf(events.Invalid, "unsigned event")
	}
	var key []byte
	if nkeys.IsValidPublicKey(e.Signer) {
		key, _ = nkeys.Decode(nkeys.Prefix(e.Signer), []byte(e.Signer))
	}
	if len(key) != ed25519.PublicKeySize {
		return events.Errorf(events.Invalid, "signer %q is not a public key", clip(e.Signer))
	}
	return events.VerifyWith(key, raw, e)
}

// A trusted-keys file lists node public keys, one a line; blank lines and
// lines starting with # are comments. `tokenledger keygen` prints one on
// stderr, and a node writes its own as signing.pub in its data directory, so
// that an auditor can hand either to --trusted-keys as it is.

// ReadTrustedKeys reads a trusted-keys file. It refuses a private seed, which
// is easily saved in the public key's place, without repeating it.
func ReadTrustedKeys(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "S") {
			return nil, events.Errorf(events.Invalid, "%s line %d is a private seed, not a public key: give the node's public key "+
				"(`tokenledger keygen` prints it on stderr; a node writes its own to signing.pub in its data directory), "+
				"and keep the seed secret", path, i+1)
		}
		keys = append(keys, line)
	}
	return keys, nil
}

// FormatTrustedKeys is a trusted-keys file of keys, headed by the one-line
// comment.
func FormatTrustedKeys(comment string, keys ...string) []byte {
	var b bytes.Buffer
	b.WriteString("# " + strings.Join(strings.Fields(comment), " ") + "\n")
	for _, k := range keys {
		b.WriteString(k + "\n")
	}
	return b.Bytes()
}

// clip shortens what an error repeats of an outside input.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
