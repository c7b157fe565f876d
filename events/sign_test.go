package events

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

func mustSigner(t *testing.T) *Signer {
	t.Helper()
	s, _ := mustSignerAndSeed(t)
	return s
}

func mustSignerAndSeed(t *testing.T) (*Signer, []byte) {
	t.Helper()
	seed, err := NewSeed()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	return s, seed
}

func TestSignAndVerify(t *testing.T) {
	node, other := mustSigner(t), mustSigner(t)
	trust, err := NewTrust(node.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	e := Event{ID: NewID(), At: time.Now(), Account: "bob", TokenID: NewID(), Actor: Actor{Kind: ActorOperator, Name: "x"},
		Data: TokenRevoked{Name: "a"}}
	prev := HashSecret("the previous event")
	digest, err := node.Sign(&e, prev)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := Encode(e)
	if Digest(raw) != digest {
		t.Fatal("Sign's digest is not the digest of the stored bytes")
	}
	if !strings.HasSuffix(string(raw), `,"sig":"`+e.Sig+`"}`) {
		t.Fatalf("sig is not the last member: %s", raw)
	}
	back, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := trust.Verify(raw, back); err != nil {
		t.Fatalf("a good event: %v", err)
	}
	if err := Link(back, prev); err != nil {
		t.Fatalf("link: %v", err)
	}
	if err := Link(back, Hash{}); err == nil {
		t.Fatal("an event with a prev linked as an account's first")
	}
	if err := Link(back, HashSecret("another head")); err == nil {
		t.Fatal("an event linked to a head it does not name")
	}
	if err := Link(Event{}, Hash{}); err != nil {
		t.Fatalf("an account's first event: %v", err)
	}
	if err := Link(Event{}, prev); err == nil {
		t.Fatal("an event without prev linked after a head")
	}

	tampered := bytes.Replace(raw, []byte(`"name":"a"`), []byte(`"name":"b"`), 1)
	tb, _ := Decode(tampered)
	if err := trust.Verify(tampered, tb); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("tampered event: %v", err)
	}
	e2 := e
	other.Sign(&e2, prev)
	raw2, _ := Encode(e2)
	if err := trust.Verify(raw2, e2); err == nil || !strings.Contains(err.Error(), "untrusted") {
		t.Fatalf("event of an untrusted key: %v", err)
	}
	if err := VerifySelfSigned(raw2, e2); err != nil {
		t.Fatalf("self-signed check of a well signed event: %v", err)
	}
	unsigned := e
	unsigned.Sig = ""
	rawU, _ := Encode(unsigned)
	if err := trust.Verify(rawU, unsigned); err == nil {
		t.Fatal("an unsigned event verified")
	}
}

func TestKeyFiles(t *testing.T) {
	path := t.TempDir() + "/signing.nk"
	seed, err := LoadOrCreateSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateSeed(path)
	if err != nil || !bytes.Equal(bytes.TrimSpace(again), seed) {
		t.Fatalf("second load: %q, %v; want the same seed", again, err)
	}
	if _, err := NewSigner([]byte("SUAFAKE")); err == nil {
		t.Fatal("a bad seed made a signer")
	}
	if _, err := NewTrust("not a key"); err == nil {
		t.Fatal("a bad public key was trusted")
	}
}

// TestSignerSignsAsNkeys: the signer keeps its own Ed25519 key, and signs
// exactly as the nkeys key pair of its seed would.
func TestSignerSignsAsNkeys(t *testing.T) {
	s, seed := mustSignerAndSeed(t)
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	h := HashSecret("anything")
	want, err := kp.Sign([]byte(snapshotContext + h.String()))
	if err != nil {
		t.Fatal(err)
	}
	have, err := s.SignDigest(h)
	if err != nil {
		t.Fatal(err)
	}
	if have != base64.RawURLEncoding.EncodeToString(want) {
		t.Fatalf("signature %s, nkeys gives %s", have, base64.RawURLEncoding.EncodeToString(want))
	}
}

// TestTrustedKeysFiles: a trusted-keys file as keygen prints it and a node
// writes it reads back as its keys; a seed in it is refused, not repeated.
func TestTrustedKeysFiles(t *testing.T) {
	a, b := mustSigner(t), mustSigner(t)
	_, seed := mustSignerAndSeed(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		content string
		want    []string
		err     string
	}{
		{"as written", string(FormatTrustedKeys("two nodes\nof one deployment", a.PublicKey(), b.PublicKey())), []string{a.PublicKey(), b.PublicKey()}, ""},
		{"comments, blank lines, spaces and CRLF", "# nodes\r\n\r\n  " + a.PublicKey() + "  \r\n\n# old: " + b.PublicKey() + "\n", []string{a.PublicKey()}, ""},
		{"only comments", "# nothing yet\n", nil, ""},
		{"a seed", "# oops\n" + a.PublicKey() + "\n" + string(seed) + "\n", nil, "line 3 is a private seed, not a public key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := dir + "/" + strings.ReplaceAll(tt.name, " ", "_")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			have, err := ReadTrustedKeys(path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), string(seed[:8])) {
					t.Fatalf("error %v, want one that says %q and holds no part of the seed", err, tt.err)
				}
				return
			}
			if err != nil || strings.Join(have, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("keys %v, %v; want %v", have, err, tt.want)
			}
		})
	}
	if got := FormatTrustedKeys("two nodes\nof one deployment", a.PublicKey()); !bytes.HasPrefix(got, []byte("# two nodes of one deployment\n")) {
		t.Fatalf("the comment is not one line:\n%s", got)
	}

	// What FormatTrustedKeys writes, ReadTrustedKeys reads back.
	path := dir + "/signing.pub"
	if err := os.WriteFile(path, FormatTrustedKeys("this node", a.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	if have, err := ReadTrustedKeys(path); err != nil || len(have) != 1 || have[0] != a.PublicKey() {
		t.Fatalf("written %s, read %v, %v", a.PublicKey(), have, err)
	}
}
