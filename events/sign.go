package events

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"strings"

	"github.com/nats-io/nkeys"
)

// Anyone with publish rights on NATS can put a message on the stream, so the
// ledger trusts no message for being there. Every event names the node key
// that signed it (signer), carries an Ed25519 signature over its own bytes
// (sig), and the hash of the account's previous event (prev), so that each
// account's history is a chain: a forged event fails its signature, and a
// copied, dropped or reordered one breaks the chain.
//
// The signature covers the event's JSON exactly as stored, with its trailing
// "sig" member removed; Encode always writes sig last. prev is the SHA-256 of
// the previous event's stored bytes, signature included.

// Signer signs events with a node's key (an nkeys server seed). It keeps
// the Ed25519 private key itself: the standard library caches the key's
// expansion by its storage, and deriving it anew for each signature (as
// nkeys' KeyPair.Sign does) costs about as much as the signature.
type Signer struct {
	key ed25519.PrivateKey
	pub string
}

// NewSigner reads a seed as `tokenledger keygen` prints it.
func NewSigner(seed []byte) (*Signer, error) {
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return nil, Errorf(Invalid, "not a signing seed: %v", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	if !nkeys.IsValidPublicServerKey(pub) {
		return nil, Errorf(Invalid, "the signing seed is not a node (server) key: make one with `tokenledger keygen`")
	}
	encoded, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	_, raw, err := nkeys.DecodeSeed(encoded)
	if err != nil || len(raw) != ed25519.SeedSize {
		return nil, Errorf(Invalid, "not a signing seed")
	}
	return &Signer{key: ed25519.NewKeyFromSeed(raw), pub: pub}, nil
}

// NewSeed makes a fresh node signing seed.
func NewSeed() ([]byte, error) {
	kp, err := nkeys.CreateServer()
	if err != nil {
		return nil, err
	}
	return kp.Seed()
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

// PublicKey is the key that verifies this signer's events.
func (s *Signer) PublicKey() string { return s.pub }

// Sign seals e as the next event after prev (the zero Hash for an account's
// first event) and returns the digest of the sealed event, the next event's prev.
func (s *Signer) Sign(e *Event, prev Hash) (Hash, error) {
	e.Prev, e.Signer, e.Sig = "", s.pub, ""
	if prev != (Hash{}) {
		e.Prev = prev.String()
	}
	unsigned, err := Encode(*e)
	if err != nil {
		return Hash{}, err
	}
	e.Sig = base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, unsigned))
	// The sealed event is the unsigned one with sig as its last member, just
	// as Encode writes it (base64url needs no escaping): what verifyWith undoes.
	sealed := append(append(append(unsigned[:len(unsigned)-1:len(unsigned)-1], sigMember...), e.Sig...), '"', '}')
	return Digest(sealed), nil
}

// Digest is the hash of an event's stored bytes: what the next event's prev holds.
func Digest(raw []byte) Hash { return sha256.Sum256(raw) }

// Trust holds the public keys whose events the ledger accepts.
type Trust struct {
	keys map[string]nkeys.KeyPair
}

// NewTrust trusts the given node public keys.
func NewTrust(pubs ...string) (*Trust, error) {
	t := &Trust{keys: make(map[string]nkeys.KeyPair)}
	for _, p := range pubs {
		kp, err := nkeys.FromPublicKey(p)
		if err != nil || !nkeys.IsValidPublicServerKey(p) {
			return nil, Errorf(Invalid, "%q is not a node public key", clip(p))
		}
		t.keys[p] = kp
	}
	return t, nil
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
			return nil, Errorf(Invalid, "%s line %d is a private seed, not a public key: give the node's public key "+
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

// Keys lists the trusted public keys.
func (t *Trust) Keys() []string {
	out := make([]string, 0, len(t.keys))
	for k := range t.keys {
		out = append(out, k)
	}
	return out
}

// sigMember is how the signature starts in an encoded event.
var sigMember = []byte(`,"sig":"`)

// Verify checks that raw, decoded as e, is signed by a trusted key. It does
// not look at the chain: see Link.
func (t *Trust) Verify(raw []byte, e Event) error {
	if e.Sig == "" || e.Signer == "" {
		return Errorf(Invalid, "unsigned event")
	}
	kp, ok := t.keys[e.Signer]
	if !ok {
		return Errorf(Invalid, "signed by an untrusted key %s", clip(e.Signer))
	}
	return verifyWith(kp, raw, e)
}

// VerifySelfSigned checks the signature against the key the event names,
// without asking whether that key is trusted: what an auditor can check with
// no list of keys.
func VerifySelfSigned(raw []byte, e Event) error {
	if e.Sig == "" || e.Signer == "" {
		return Errorf(Invalid, "unsigned event")
	}
	kp, err := nkeys.FromPublicKey(e.Signer)
	if err != nil {
		return Errorf(Invalid, "signer %q is not a public key", clip(e.Signer))
	}
	return verifyWith(kp, raw, e)
}

func verifyWith(kp nkeys.KeyPair, raw []byte, e Event) error {
	i := bytes.LastIndex(raw, sigMember)
	if i < 0 || !bytes.Equal(raw[i+len(sigMember):], []byte(e.Sig+`"}`)) {
		return Errorf(Invalid, "the signature is not the event's last member")
	}
	sig, err := base64.RawURLEncoding.DecodeString(e.Sig)
	if err != nil {
		return Errorf(Invalid, "the signature is not base64url")
	}
	unsigned := append(raw[:i:i], '}')
	if err := kp.Verify(unsigned, sig); err != nil {
		return Errorf(Invalid, "bad signature")
	}
	return nil
}

// Link checks that e continues the account's chain whose last event has
// digest head (the zero Hash when the account has no event yet).
func Link(e Event, head Hash) error {
	if head == (Hash{}) && e.Prev == "" || head != (Hash{}) && head.Names(e.Prev) {
		return nil
	}
	want := "none"
	if head != (Hash{}) {
		want = head.String()
	}
	return Errorf(Invalid, "broken chain: prev %s, want %s", clip(orNone(e.Prev)), want)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// snapshotContext keeps a snapshot signature from being taken for an event's.
const snapshotContext = "tokenledger snapshot\n"

// SignDigest signs the digest of a projection snapshot.
func (s *Signer) SignDigest(h Hash) (string, error) {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, []byte(snapshotContext+h.String()))), nil
}

// VerifyDigest checks a snapshot's signature by a trusted key.
func (t *Trust) VerifyDigest(signer string, h Hash, sig string) error {
	kp, ok := t.keys[signer]
	if !ok {
		return Errorf(Invalid, "snapshot signed by an untrusted key %s", clip(signer))
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return Errorf(Invalid, "snapshot signature is not base64url")
	}
	if kp.Verify([]byte(snapshotContext+h.String()), raw) != nil {
		return Errorf(Invalid, "bad snapshot signature")
	}
	return nil
}
