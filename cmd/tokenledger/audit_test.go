package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/jetstream"
)

// mustCLIErr is mustCLI that also returns stderr.
func mustCLIErr(t *testing.T, url string, args ...string) (string, string) {
	t.Helper()
	out, errOut, code := runCLI(t, url, args...)
	if code != 0 {
		t.Fatalf("tokenledger %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

// TestForgeriesAreIgnoredAndReported: someone with publish rights on NATS
// writes to the stream by hand. Nodes ignore what they write, and verify
// names each bad event by sequence.
func TestForgeriesAreIgnoredAndReported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := t.TempDir()
	node := cliServe(t, data)
	url := node.natsURL
	mustCLI(t, url, "create", "--account", "bob", "--name", "deploy")
	mustCLI(t, url, "create", "--account", "bob", "--name", "ci")
	// An auditor in the node's data directory trusts the key it left there.
	if out := mustCLI(t, url, "verify"); !strings.Contains(out, "checked 2 events in 1 accounts: 0 bad") ||
		!strings.Contains(out, "signers checked against 1 trusted key from "+filepath.Join(data, "signing.pub")) {
		t.Fatalf("verify of a clean stream: %s", out)
	}

	seed, err := os.ReadFile(filepath.Join(data, "signing.nk"))
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := access.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(t.TempDir(), "trusted")
	os.WriteFile(trusted, []byte("# the node\n"+nodeKey.PublicKey()+"\n"), 0o600)

	// Anyone with publish rights on the events: here the node's own NATS user.
	js, _ := natsjs.New(node.connect(t, access.Node))
	ctx := context.Background()
	stream, err := jetstream.Open(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	var head events.Hash
	stream.Read(ctx, events.ReadOptions{Account: "bob"}, func(m events.Msg) error {
		raws = append(raws, m.Raw)
		head = events.Digest(m.Raw)
		return nil
	})
	publish := func(subject string, raw []byte) uint64 {
		t.Helper()
		ack, err := js.Publish(ctx, subject, raw)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	forge := func(signer *events.Signer, prev events.Hash, name, secret string) (uint64, string) {
		t.Helper()
		e := events.Event{ID: events.NewID(), At: time.Now(), Account: "bob", TokenID: events.NewTokenID(),
			Actor: events.Actor{Kind: events.ActorOperator, Name: "mallory"},
			Data:  events.TokenCreated{Name: name, TokenHash: events.HashSecret(secret), FullAccess: true}}
		var raw []byte
		if signer != nil {
			if _, err := signer.Sign(&e, prev); err != nil {
				t.Fatal(err)
			}
		} else {
			e.Prev = prev.String()
		}
		raw, _ = events.Encode(e)
		return publish("tokens.events.bob."+e.TokenID.String(), raw), secret
	}
	otherSeed, _ := access.NewSeed()
	otherKey, _ := access.NewSigner(otherSeed)

	unsignedSeq, unsignedSecret := forge(nil, head, "forged1", events.NewSecret())
	untrustedSeq, untrustedSecret := forge(otherKey, head, "forged2", events.NewSecret())
	brokenSeq, brokenSecret := forge(nodeKey, events.HashSecret("not the head"), "forged3", events.NewSecret())
	copySeq := publish("tokens.events.bob.copy", raws[0])

	// The node keeps working: the next command appends after the forgeries
	// and chains to the last real event.
	mustCLI(t, url, "create", "--account", "bob", "--name", "after")
	for _, secret := range []string{unsignedSecret, untrustedSecret, brokenSecret} {
		if out, _, code := runCLI(t, url, "validate", secret); code != 1 || !strings.Contains(out, `"unknown"`) {
			t.Fatalf("a forged token validates: exit %d, %s", code, out)
		}
	}
	if have := listJSON(t, url, "bob"); len(have) != 3 || have[2].Name != "after" {
		t.Fatalf("list after forgeries: %+v", have)
	}

	// With the node's key, by default or named, each forgery is named.
	for _, args := range [][]string{{"verify"}, {"verify", "--trusted-keys", trusted}} {
		out, _, code := runCLI(t, url, args...)
		if code != 1 {
			t.Fatalf("%s: exit %d, want 1:\n%s", args, code, out)
		}
		for _, want := range []string{
			"BAD seq " + strconv.FormatUint(unsignedSeq, 10) + " account bob: unsigned event",
			"BAD seq " + strconv.FormatUint(untrustedSeq, 10) + " account bob: signed by an untrusted key",
			"BAD seq " + strconv.FormatUint(brokenSeq, 10) + " account bob: broken chain",
			"BAD seq " + strconv.FormatUint(copySeq, 10) + " account bob: broken chain",
			"checked 7 events in 1 accounts: 4 bad",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", args, want, out)
			}
		}
	}
	// Checking signatures alone, against the key each event names, the
	// forgery signed by another key passes, and the real event after it
	// looks unchained. Still not clean, and it says what was not checked.
	out, _, code := runCLI(t, url, "verify", "--signatures-only")
	if code != 1 || !strings.Contains(out, "checked 7 events") || !strings.Contains(out, "note: signers were not checked") {
		t.Fatalf("verify --signatures-only:\n%s", out)
	}
	history, errOut := mustCLIErr(t, url, "history", "--account", "bob")
	if n := strings.Count(history, "UNTRUSTED token.created"); n != 2 || !strings.Contains(errOut, "2 events are UNTRUSTED") {
		t.Fatalf("history marks %d events UNTRUSTED, want the unsigned and the untrusted forgery:\n%s%s", n, history, errOut)
	}
	// A restarted node rebuilds the same table and still ignores them.
	node.stop(t)
	node = cliServe(t, data)
	if have := listJSON(t, node.natsURL, "bob"); len(have) != 3 {
		t.Fatalf("list after restart: %+v", have)
	}
	if !strings.Contains(node.stderr.String(), "ALERT") {
		t.Fatalf("the node raised no alert for the forged events:\n%s", node.stderr)
	}
}
