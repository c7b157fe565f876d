package projections_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestSnapshotRestoresTheSameTable(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	ctx := context.Background()
	op := events.Actor{Kind: events.ActorOperator, Name: "test"}
	exp := time.Now().Add(72 * time.Hour).Unix()
	var secrets []string
	for _, acc := range []string{"bob", "carol"} {
		for _, name := range []string{"a", "b", "c"} {
			c, err := n.Ledger.Create(ctx, commands.Create{Account: acc, Name: name, ExpiresAt: &exp, Actor: op})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, c.Secret)
		}
	}
	if err := n.Ledger.Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"b"}, Actor: op}); err != nil {
		t.Fatal(err)
	}
	if err := n.Ledger.Rename(ctx, commands.Rename{Account: "carol", Name: "c", NewName: "cc", Actor: op}); err != nil {
		t.Fatal(err)
	}
	mustBeLevel(t, n)
	js, _ := natsjs.New(n.Conn)
	store, err := jetstream.OpenSnapshots(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := &projections.Snapshotter{Table: n.Table, Store: store, Stream: n.Stream, Signer: n.Signer, Log: quiet}
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}

	restored := projections.Restore(ctx, store, nil, n.Stream, n.Trust, projections.DefaultWarn, quiet)
	if restored.Applied() != n.Table.Applied() || restored.Applied() == 0 {
		t.Fatalf("restored at %d, want %d", restored.Applied(), n.Table.Applied())
	}
	now := time.Now()
	for _, acc := range []string{"bob", "carol"} {
		want, have := n.Table.List(acc, now), restored.List(acc, now)
		if len(want) != len(have) {
			t.Fatalf("%s: restored %+v, want %+v", acc, have, want)
		}
		for i := range want {
			if want[i].Name != have[i].Name || want[i].TokenID != have[i].TokenID || !want[i].Created.Equal(have[i].Created) ||
				*want[i].ExpiresAt != *have[i].ExpiresAt || want[i].Status != have[i].Status {
				t.Fatalf("%s row %d: restored %+v, want %+v", acc, i, have[i], want[i])
			}
		}
	}
	for _, secret := range secrets {
		if w, h := n.Table.Validate(secret, "", now), restored.Validate(secret, "", now); resultText(w) != resultText(h) {
			t.Fatalf("validate after restore: %+v, want %+v", h, w)
		}
	}

	// A node that starts from the snapshot applies the events after it: its
	// chains continue from the snapshot's heads.
	if _, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "later", Actor: op}); err != nil {
		t.Fatal(err)
	}
	f := projections.NewFollower(restored, n.Stream, n.Trust, quiet)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); f.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	f.WaitReady(ctx)
	natstest.Eventually(t, "the restored table to apply the later event", func() bool {
		return len(restored.List("bob", time.Now())) == 3
	})
}

// mustBeLevel waits until n's table has applied all the stream holds:
// commands answer once their own event is applied, maybe before the stream
// has handed it back, and a snapshot covers only what came back.
func mustBeLevel(t *testing.T, n *nodetest.Node) {
	t.Helper()
	ctx := context.Background()
	last, err := n.Stream.LastSeq(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Table.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotIsTrustedOnlyWhenSigned(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	ctx := context.Background()
	if _, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", Actor: events.Actor{Kind: events.ActorOperator, Name: "t"}}); err != nil {
		t.Fatal(err)
	}
	mustBeLevel(t, n)
	js, _ := natsjs.New(n.Conn)
	store, _ := jetstream.OpenSnapshots(ctx, js, events.DefaultConfig())

	// A snapshot signed by a key the node does not trust.
	seed, _ := access.NewSeed()
	stranger, _ := access.NewSigner(seed)
	s := &projections.Snapshotter{Table: n.Table, Store: store, Stream: n.Stream, Signer: stranger, Log: quiet}
	if err := s.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if restored := projections.Restore(ctx, store, nil, n.Stream, n.Trust, projections.DefaultWarn, quiet); restored.Applied() != 0 {
		t.Fatal("a snapshot of an untrusted key was used")
	}

	// A body that does not match its signed digest.
	var buf bytes.Buffer
	seq, _ := n.Table.Encode(&buf)
	body := buf.Bytes()
	digest := events.Digest(body)
	sig, _ := n.Signer.SignDigest(digest)
	at, _ := n.Stream.DigestAt(ctx, seq)
	tampered := bytes.Clone(body)
	tampered[len(tampered)-2] ^= 0xff
	store.Put(ctx, events.Snapshot{Seq: seq, AtSeq: at, Body: digest, Signer: n.Signer.PublicKey(), Sig: sig}, bytes.NewReader(tampered))
	if restored := projections.Restore(ctx, store, nil, n.Stream, n.Trust, projections.DefaultWarn, quiet); restored.Applied() != 0 {
		t.Fatal("a tampered snapshot was used")
	}

	// A good snapshot that names another stream's message.
	store.Put(ctx, events.Snapshot{Seq: seq, AtSeq: events.HashSecret("elsewhere"), Body: digest, Signer: n.Signer.PublicKey(), Sig: sig}, bytes.NewReader(body))
	if restored := projections.Restore(ctx, store, nil, n.Stream, n.Trust, projections.DefaultWarn, quiet); restored.Applied() != 0 {
		t.Fatal("a snapshot of another stream was used")
	}

	store.Put(ctx, events.Snapshot{Seq: seq, AtSeq: at, Body: digest, Signer: n.Signer.PublicKey(), Sig: sig}, bytes.NewReader(body))
	if restored := projections.Restore(ctx, store, nil, n.Stream, n.Trust, projections.DefaultWarn, quiet); restored.Applied() != seq {
		t.Fatal("a good snapshot was not used")
	}
}

func TestDecodeTableRefusesJunk(t *testing.T) {
	for _, junk := range [][]byte{nil, []byte("hello"), []byte("tokenledger table v1\n\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")} {
		if _, err := projections.DecodeTable(bytes.NewReader(junk), int64(len(junk)), projections.DefaultWarn); err == nil {
			t.Errorf("DecodeTable(%q) accepted", junk)
		}
	}
}

// TestDecodeTableCountsFitTheBody: a header that claims thirty million
// tokens in a body of a few bytes is refused before anything is set aside
// for them. The body's digest is checked only once it is read, so until
// then its header is any writer's word.
func TestDecodeTableCountsFitTheBody(t *testing.T) {
	var buf bytes.Buffer
	tab := projections.NewTable(projections.DefaultWarn)
	if _, err := tab.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	empty := buf.Bytes()
	if _, err := projections.DecodeTable(bytes.NewReader(empty), int64(len(empty)), projections.DefaultWarn); err != nil {
		t.Fatalf("an empty table's snapshot: %v", err)
	}
	// The magic, applied 0, no accounts, 30,000,000 tokens, no name bytes, no feature sets.
	forged := append([]byte(projections.SnapshotMagic), 0, 0)
	forged = binary.AppendUvarint(forged, 30_000_000)
	forged = append(forged, 0, 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := projections.DecodeTable(bytes.NewReader(forged), int64(len(forged)), projections.DefaultWarn)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "counts") {
		t.Fatalf("DecodeTable of a forged count: %v, want refused at the counts", err)
	}
	// The old bound set aside 1,256 MB here; the margin is for whatever else
	// the process allocates meanwhile (a test before this one may still be
	// shutting a server down).
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Errorf("refusing a forged count of 30,000,000 tokens allocated %d MB", got>>20)
	}
}

func resultText(r projections.Result) string {
	exp := "never"
	if r.ExpiresAt != nil {
		exp = time.Unix(*r.ExpiresAt, 0).String()
	}
	return fmt.Sprint(r.Valid, r.Reason, r.Account, r.TokenID, r.Name(), r.Status, exp)
}
