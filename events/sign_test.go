package events

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// mustSigner is a signer of a fresh key, named by its public key in
// base64url: events takes any name a Trust knows the key by (a node's is
// its nkey, see access.NewSigner).
func mustSigner(tb testing.TB) *Signer {
	tb.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return NewSigner(key, base64.RawURLEncoding.EncodeToString(pub))
}

// mustTrust trusts the signers' keys.
func mustTrust(tb testing.TB, signers ...*Signer) *Trust {
	tb.Helper()
	keys := make(map[string]ed25519.PublicKey)
	for _, s := range signers {
		keys[s.PublicKey()] = s.key.Public().(ed25519.PublicKey)
	}
	return NewTrust(keys)
}

func TestSignAndVerify(t *testing.T) {
	node, other := mustSigner(t), mustSigner(t)
	trust := mustTrust(t, node)
	e := Event{ID: NewID(), At: time.Now(), Account: "bob", TokenID: NewTokenID(), Actor: Actor{Kind: ActorOperator, Name: "x"},
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
	if err := VerifyWith(other.key.Public().(ed25519.PublicKey), raw2, e2); err != nil {
		t.Fatalf("self-signed check of a well signed event: %v", err)
	}
	unsigned := e
	unsigned.Sig = ""
	rawU, _ := Encode(unsigned)
	if err := trust.Verify(rawU, unsigned); err == nil {
		t.Fatal("an unsigned event verified")
	}
	if err := VerifyWith(node.key.Public().(ed25519.PublicKey), rawU, unsigned); err == nil {
		t.Fatal("an unsigned event verified by its key")
	}
}

func mustPrefixes(t *testing.T, list ...string) []Prefix {
	t.Helper()
	ps, err := ParsePrefixes(list)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestSealedIsWhatEncodeGives: Sign leaves on the event the very bytes that
// Encode gives for it, so that the adapter stores them without encoding
// the event again; an event not sealed, or signed again by other means, has
// none.
func TestSealedIsWhatEncodeGives(t *testing.T) {
	signer := mustSigner(t)
	for _, tt := range []struct {
		name string
		have Data
	}{
		{"created", TokenCreated{Name: "deploy", TokenHash: HashSecret("s"), FullAccess: true, AllowedIPs: mustPrefixes(t, "10.0.0.0/8")}},
		{"renamed", TokenRenamed{OldName: "a", NewName: "b"}},
		{"revoked", TokenRevoked{Name: "a<&>\u2028"}},
		{"features", FeaturesSet{Name: "a", Features: []string{"read"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := Event{ID: NewID(), At: time.Now(), Account: "bob", TokenID: NewTokenID(),
				Actor: Actor{Kind: ActorOperator, Name: "alice"}, Data: tt.have}
			if e.Sealed() != nil {
				t.Fatal("an event not signed has sealed bytes")
			}
			digest, err := signer.Sign(&e, HashSecret("prev"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if have := e.Sealed(); !bytes.Equal(have, want) || Digest(have) != digest {
				t.Fatalf("sealed\n%s\nEncode gives\n%s", have, want)
			}
			forged := e
			forged.Sig = "c2ln"
			if forged.Sealed() != nil {
				t.Fatal("an event whose signature changed kept its sealed bytes")
			}
		})
	}
}
