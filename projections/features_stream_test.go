package projections_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

// TestOldStreamReplaysAsFullAccess: a stream written before features and
// read-only tokens (its token.created events have neither field) replays to
// tokens with full access that may write, on a node and as of any instant.
func TestOldStreamReplaysAsFullAccess(t *testing.T) {
	l := mustLedger(t)
	secret := events.NewSecret()
	old := events.TokenCreated{Name: "deploy", TokenHash: events.HashSecret(secret), FullAccess: true}
	at := l.append("bob", events.NewTokenID(), old)
	var raw []byte
	l.stream.Read(context.Background(), events.ReadOptions{}, func(m events.Msg) error { raw = m.Raw; return nil })
	if strings.Contains(string(raw), "features") || strings.Contains(string(raw), "readonly") {
		t.Fatalf("not an event as written before features: %s", raw)
	}
	table, err := projections.AsOf(context.Background(), l.stream, "", at, projections.DefaultWarn, l.trust.Verify)
	if err != nil {
		t.Fatal(err)
	}
	rows := table.List("bob", at)
	if len(rows) != 1 || !rows[0].FullAccess || rows[0].Features != nil || rows[0].ReadOnly {
		t.Fatalf("rows %+v", rows)
	}
	r := table.ValidateFor(secret, "bob", netip.Addr{}, projections.Need{Features: []string{"email"}, Write: true}, func() time.Time { return at })
	if !r.Valid || r.Features != nil || r.ReadOnly {
		t.Fatalf("an old token for a write needing email: %+v", r)
	}
}

// TestAsOfShowsFeaturesThen: a replay shows the features each token had at
// the instant, through narrowing, widening and back to full access.
func TestAsOfShowsFeaturesThen(t *testing.T) {
	l := mustLedger(t)
	id := events.NewTokenID()
	t1 := l.append("bob", id, events.TokenCreated{Name: "deploy", TokenHash: events.HashSecret(events.NewSecret()),
		Features: []string{"email", "ftp"}, ReadOnly: true})
	t2 := l.append("bob", id, events.FeaturesSet{Name: "deploy", Features: []string{"email"}})
	t3 := l.append("bob", id, events.FeaturesSet{Name: "deploy", Features: []string{"dns", "email"}})
	t4 := l.append("bob", id, events.FeaturesSet{Name: "deploy", Features: []string{}})
	for _, tt := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"created limited", t1, "false [email ftp] true"},
		{"narrowed", t2, "false [email] true"},
		{"widened", t3, "false [dns email] true"},
		{"full access again, still read-only", t4, "true [] true"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			table, err := projections.AsOf(context.Background(), l.stream, "bob", tt.at, projections.DefaultWarn, l.trust.Verify)
			if err != nil {
				t.Fatal(err)
			}
			rows := table.List("bob", tt.at)
			if len(rows) != 1 {
				t.Fatalf("rows %+v", rows)
			}
			if have := fmt.Sprint(rows[0].FullAccess, " ", rows[0].Features, " ", rows[0].ReadOnly); have != tt.want {
				t.Fatalf("as of %v: %s, want %s", tt.at, have, tt.want)
			}
		})
	}
}

// TestRestoreRefusesAnOldSnapshot: a snapshot in the format before
// features, signed and whole, is not used (a node replays the stream
// instead); one in today's format keeps every token's features.
func TestRestoreRefusesAnOldSnapshot(t *testing.T) {
	srv := natstest.MustServer(t)
	n := nodetest.MustNode(t, srv, nodetest.Options{})
	ctx := context.Background()
	op := events.Actor{Kind: events.ActorOperator, Name: "test"}
	limited, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "mail", Features: []string{"email"}, ReadOnly: true, Actor: op})
	if err != nil {
		t.Fatal(err)
	}
	mustBeLevel(t, n)
	js, _ := natsjs.New(n.Conn)
	store, err := jetstream.OpenSnapshots(ctx, js, events.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	seq, err := n.Table.Encode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	at, err := n.Stream.DigestAt(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	put := func(body []byte) {
		t.Helper()
		digest := events.Digest(body)
		sig, err := n.Signer.SignDigest(digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Put(ctx, events.Snapshot{Seq: seq, AtSeq: at, Body: digest, Signer: n.Signer.PublicKey(), Sig: sig}, bytes.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	body := buf.Bytes()
	v3 := append([]byte("tokenledger table v3\n"), body[len("tokenledger table v4\n"):]...)
	if !bytes.HasPrefix(body, []byte("tokenledger table v4\n")) {
		t.Fatalf("the format is not v4: %q", body[:24])
	}
	put(v3)
	if restored := projections.Restore(ctx, store, nil, n.Stream, n.Trust, projections.DefaultWarn, quiet); restored.Applied() != 0 {
		t.Fatal("a snapshot of the format before features was used")
	}
	put(body)
	restored := projections.Restore(ctx, store, nil, n.Stream, n.Trust, projections.DefaultWarn, quiet)
	if restored.Applied() != seq {
		t.Fatal("the snapshot was not used")
	}
	now := time.Now()
	for _, need := range []projections.Need{{}, {Features: []string{"email"}}, {Features: []string{"ftp"}}, {Write: true}} {
		w := n.Table.ValidateFor(limited.Secret, "bob", netip.Addr{}, need, func() time.Time { return now })
		h := restored.ValidateFor(limited.Secret, "bob", netip.Addr{}, need, func() time.Time { return now })
		if fmt.Sprintf("%+v", w) != fmt.Sprintf("%+v", h) {
			t.Fatalf("need %+v after a restore: %+v, want %+v", need, h, w)
		}
	}
}
