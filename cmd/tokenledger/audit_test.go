package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tokenledger/events"
)

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
	if out := mustCLI(t, url, "verify"); !strings.Contains(out, "checked 2 events in 1 accounts: 0 bad") {
		t.Fatalf("verify of a clean stream: %s", out)
	}

	seed, err := os.ReadFile(filepath.Join(data, "signing.nk"))
	if err != nil {
		t.Fatal(err)
	}
	nodeKey, err := events.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	trusted := filepath.Join(t.TempDir(), "trusted")
	os.WriteFile(trusted, []byte("# the node\n"+nodeKey.PublicKey()+"\n"), 0o600)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	stream, err := events.Open(ctx, js, events.DefaultConfig())
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
		e := events.Event{ID: events.NewID(), At: time.Now(), Account: "bob", TokenID: events.NewID(),
			Actor: events.Actor{Kind: events.ActorOperator, Name: "mallory"},
			Data:  events.TokenCreated{Name: name, TokenHash: events.HashSecret(secret).String(), FullAccess: true}}
		var raw []byte
		if signer != nil {
			if _, err := signer.Sign(&e, prev); err != nil {
				t.Fatal(err)
			}
		} else {
			e.Prev = prev.String()
		}
		raw, _ = events.Encode(e)
		return publish("tokens.events.bob."+e.TokenID, raw), secret
	}
	otherSeed, _ := events.NewSeed()
	otherKey, _ := events.NewSigner(otherSeed)

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

	out, _, code := runCLI(t, url, "verify", "--trusted-keys", trusted)
	if code != 1 {
		t.Fatalf("verify exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"BAD seq " + strconv.FormatUint(unsignedSeq, 10) + " account bob: unsigned event",
		"BAD seq " + strconv.FormatUint(untrustedSeq, 10) + " account bob: signed by an untrusted key",
		"BAD seq " + strconv.FormatUint(brokenSeq, 10) + " account bob: broken chain",
		"BAD seq " + strconv.FormatUint(copySeq, 10) + " account bob: broken chain",
		"checked 7 events in 1 accounts: 4 bad",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	// Without a list of keys, a signature is only checked against the key
	// the event names: the forgery signed by another key then passes, and
	// the real event after it looks unchained. Still not clean, and it says why.
	out, _, code = runCLI(t, url, "verify")
	if code != 1 || !strings.Contains(out, "checked 7 events") || !strings.Contains(out, "note: no --trusted-keys") {
		t.Fatalf("verify without keys:\n%s", out)
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
