package access

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"tokenledger/events"
)

func mustSigner(t *testing.T) *events.Signer {
	t.Helper()
	s, _ := mustSignerAndSeed(t)
	return s
}

func mustSignerAndSeed(t *testing.T) (*events.Signer, []byte) {
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

func mustTokenID(t *testing.T, s string) events.TokenID {
	t.Helper()
	id, err := events.ParseTokenID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSignaturesAsBefore: a node's seed signs an event, and a snapshot,
// byte for byte as nodes did before signing moved out of nkeys' hands, so
// that the streams they wrote still verify. The bytes are what the first
// release's code gave for this seed and event.
func TestSignaturesAsBefore(t *testing.T) {
	const (
		seed        = "SNACZPG435HJP3OB2NCUFZFJ73QIGW3IWL45YG4PAOAWD4XNRBHCJ6HEEA"
		want        = `{"v":1,"id":"01JD0000000000000000000000","type":"token.revoked","at":"2026-11-23T10:00:00.000Z","account":"bob","token_id":"01JD0000000000000000000001","actor":{"kind":"operator","name":"alice","via":"nats:operator"},"data":{"name":"deploy"},"prev":"sha256:363c9434ca9dc39c5e4813e8ec639da90ac02f05a515886149ecf944642cebc7","signer":"NC3Z6LRBGRHEGDOKVYU6VQIKQJ22JW2UKUK7D2WA65SET4THNHFOSQ46","sig":"8JpouaLgGCjTu7OFcFy2JU5_EPxHanLvucCr2smiTANFbA3b5B6mmSSLGjDhHWylt2e450OI6aqmVWPxIHhuAQ"}`
		snapshotSig = "xtdIDmK7qFMDsprwtk1uDUpZTATPrT66l7Ui-P0sqOnpq7gd5UBNsIUuUfyIeOXhkeiStnql4uSFJGgU8y0zDg"
	)
	signer, err := NewSigner([]byte(seed + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := events.Event{ID: "01JD0000000000000000000000", At: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		Account: "bob", TokenID: mustTokenID(t, "01JD0000000000000000000001"), Actor: events.Actor{Kind: events.ActorOperator, Name: "alice", Via: "nats:operator"},
		Data: events.TokenRevoked{Name: "deploy"}}
	if _, err := signer.Sign(&e, events.HashSecret("the previous event")); err != nil {
		t.Fatal(err)
	}
	if have := string(e.Sealed()); have != want {
		t.Fatalf("sealed\n%s\nwant\n%s", have, want)
	}
	trust, err := NewTrust(signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	back, err := events.Decode([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if err := trust.Verify([]byte(want), back); err != nil {
		t.Fatalf("trusted: %v", err)
	}
	if err := VerifySelfSigned([]byte(want), back); err != nil {
		t.Fatalf("self-signed: %v", err)
	}
	if have, _ := signer.SignDigest(events.HashSecret("a snapshot")); have != snapshotSig {
		t.Fatalf("snapshot signature %s, want %s", have, snapshotSig)
	}
	if err := trust.VerifyDigest(signer.PublicKey(), events.HashSecret("a snapshot"), snapshotSig); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
}

// TestVerifySelfSigned: an event verifies against the key it names, and
// not when that is no public key, or not the key that signed it.
func TestVerifySelfSigned(t *testing.T) {
	a, b := mustSigner(t), mustSigner(t)
	e := events.Event{ID: events.NewID(), At: time.Now(), Account: "bob", TokenID: events.NewTokenID(),
		Actor: events.Actor{Kind: events.ActorOperator, Name: "x"}, Data: events.TokenRevoked{Name: "a"}}
	if _, err := a.Sign(&e, events.Hash{}); err != nil {
		t.Fatal(err)
	}
	raw := e.Sealed()
	for _, tt := range []struct {
		name   string
		signer string
		want   string
	}{
		{"its signer", a.PublicKey(), ""},
		{"another node", b.PublicKey(), "bad signature"},
		{"a user key", "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", "bad signature"},
		{"no key", "N\x1b[2J", "is not a public key"},
		{"none", "", "unsigned event"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			have := e
			have.Signer = tt.signer
			err := VerifySelfSigned(raw, have)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
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
	h := events.HashSecret("anything")
	want, err := kp.Sign([]byte("tokenledger snapshot\n" + h.String())) // what events signs for a snapshot
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
