package events

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"maps"
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

// Signer signs events with a node's key. It keeps the Ed25519 private key
// itself: the standard library caches the key's expansion by its storage,
// and deriving it anew for each signature (as nkeys' KeyPair.Sign does)
// costs about as much as the signature. Package access reads a node's
// signing seed, an nkey, into one (access.NewSigner).
type Signer struct {
	key ed25519.PrivateKey
	pub string
}

// NewSigner signs with key, and names pub, the text form of key's public
// half that Trust knows it by, in every event it signs.
func NewSigner(key ed25519.PrivateKey, pub string) *Signer {
	return &Signer{key: key, pub: pub}
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
	e.sealed = sealed
	return Digest(sealed), nil
}

// Sealed is e as Sign sealed it: the bytes to store, so that an event is
// encoded once on its way to the stream. It is nil for an event that Sign
// did not seal, or whose signature changed since; an event changed in any
// other way after Sign must be signed again.
func (e Event) Sealed() []byte {
	n := len(e.sealed) - len(`"}`)
	if e.Sig == "" || n < len(e.Sig) || string(e.sealed[n-len(e.Sig):n]) != e.Sig {
		return nil
	}
	return e.sealed
}

// Digest is the hash of an event's stored bytes: what the next event's prev holds.
func Digest(raw []byte) Hash { return sha256.Sum256(raw) }

// Trust holds the public keys whose events the ledger accepts, each by the
// text form events name it by (Event.Signer). Package access makes one from
// node public keys as nkeys print them (access.NewTrust).
type Trust struct {
	keys map[string]ed25519.PublicKey
}

// NewTrust trusts keys, by the names events give them.
func NewTrust(keys map[string]ed25519.PublicKey) *Trust {
	return &Trust{keys: maps.Clone(keys)}
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
	key, ok := t.keys[e.Signer]
	if !ok {
		return Errorf(Invalid, "signed by an untrusted key %s", clip(e.Signer))
	}
	return verifyWith(key, raw, e)
}

// VerifyWith checks that raw, decoded as e, is signed by key, without
// asking whether key is trusted: access.VerifySelfSigned's check, with the
// key the event names.
func VerifyWith(key ed25519.PublicKey, raw []byte, e Event) error {
	if e.Sig == "" || e.Signer == "" {
		return Errorf(Invalid, "unsigned event")
	}
	return verifyWith(key, raw, e)
}

func verifyWith(key ed25519.PublicKey, raw []byte, e Event) error {
	i := bytes.LastIndex(raw, sigMember)
	if i < 0 || !bytes.Equal(raw[i+len(sigMember):], []byte(e.Sig+`"}`)) {
		return Errorf(Invalid, "the signature is not the event's last member")
	}
	sig, err := base64.RawURLEncoding.DecodeString(e.Sig)
	if err != nil {
		return Errorf(Invalid, "the signature is not base64url")
	}
	unsigned := append(raw[:i:i], '}')
	if len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, unsigned, sig) {
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
	key, ok := t.keys[signer]
	if !ok {
		return Errorf(Invalid, "snapshot signed by an untrusted key %s", clip(signer))
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return Errorf(Invalid, "snapshot signature is not base64url")
	}
	if !ed25519.Verify(key, []byte(snapshotContext+h.String()), raw) {
		return Errorf(Invalid, "bad snapshot signature")
	}
	return nil
}
