package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"tokenledger/access"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/jetstream"
	"tokenledger/projections"
)

type ledger struct {
	t      *testing.T
	js     natsjs.JetStream
	stream *jetstream.Stream
	signer *events.Signer
	trust  *events.Trust
	heads  map[string]events.Hash
}

func mustLedger(t *testing.T) *ledger {
	js, err := natsjs.New(natstest.MustConnect(t, natstest.MustServer(t)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jetstream.Ensure(context.Background(), js, events.DefaultConfig(), jetstream.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	signer := nodetest.SharedSigner(t)
	trust, _ := access.NewTrust(signer.PublicKey())
	return &ledger{t: t, js: js, stream: s, signer: signer, trust: trust, heads: make(map[string]events.Hash)}
}

// append stores one event and returns its storage time as read back.
func (l *ledger) append(account string, tokenID events.TokenID, d events.Data) time.Time {
	l.t.Helper()
	ctx := context.Background()
	last, err := l.stream.LastSeq(ctx, account)
	if err != nil {
		l.t.Fatal(err)
	}
	e := events.Event{ID: events.NewID(), At: time.Now(), Account: account,
		TokenID: tokenID, Actor: events.Actor{Kind: events.ActorOperator, Name: "test"}, Data: d}
	if l.heads[account], err = l.signer.Sign(&e, l.heads[account]); err != nil {
		l.t.Fatal(err)
	}
	seq, err := l.stream.Append(ctx, account, last, []events.Event{e})
	if err != nil {
		l.t.Fatal(err)
	}
	var at time.Time
	l.stream.Read(ctx, events.ReadOptions{AfterSeq: seq - 1}, func(m events.Msg) error { at = m.Stored; return nil })
	return at
}

func created(name string) events.TokenCreated {
	return events.TokenCreated{Name: name, TokenHash: events.HashSecret(events.NewSecret()), FullAccess: true}
}

func TestAsOf(t *testing.T) {
	l := mustLedger(t)
	x, y := events.NewTokenID(), events.NewTokenID()
	t1 := l.append("bob", x, created("x"))
	t2 := l.append("bob", y, created("y"))
	t3 := l.append("bob", x, events.TokenRenamed{OldName: "x", NewName: "x2"})
	t4 := l.append("bob", y, events.TokenRevoked{Name: "y"})
	l.append("carol", events.NewTokenID(), created("c"))
	for _, tt := range []struct {
		name string
		at   time.Time
		want string
	}{
		{"before everything", t1.Add(-time.Millisecond), "[]"},
		{"at the first event", t1, "[x]"},
		{"between the creations and the rename", t2, "[x y]"},
		{"after the rename", t3, "[x2 y]"},
		{"after the revoke", t4, "[x2]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			table, err := projections.AsOf(context.Background(), l.stream, "bob", tt.at, projections.DefaultWarn, l.trust.Verify)
			if err != nil {
				t.Fatal(err)
			}
			var have []string
			for _, r := range table.List("bob", tt.at) {
				have = append(have, r.Name)
			}
			if fmt.Sprint(have) != tt.want && !(tt.want == "[]" && have == nil) {
				t.Fatalf("as of %v: %v, want %s", tt.at, have, tt.want)
			}
			if len(table.List("carol", tt.at)) > 0 {
				t.Fatal("a replay of bob holds carol's tokens")
			}
		})
	}
}

func TestHistoryFollowsRenames(t *testing.T) {
	l := mustLedger(t)
	a, b, c := events.NewTokenID(), events.NewTokenID(), events.NewTokenID()
	l.append("bob", a, created("deploy"))
	l.append("bob", a, events.TokenRenamed{OldName: "deploy", NewName: "old-deploy"})
	l.append("bob", b, created("deploy")) // the name reused by another token
	l.append("bob", a, events.TokenRevoked{Name: "old-deploy"})
	l.append("bob", c, created("other"))
	l.append("carol", events.NewTokenID(), created("deploy"))

	history := func(f projections.HistoryFilter) []string {
		var out []string
		err := projections.History(context.Background(), l.stream, f, func(m events.Msg) error {
			out = append(out, m.Event.Account+":"+m.Event.Type())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if have := history(projections.HistoryFilter{Account: "bob", Name: "deploy"}); fmt.Sprint(have) !=
		"[bob:token.created bob:token.renamed bob:token.created bob:token.revoked]" {
		t.Fatalf("bob's deploy: %v", have)
	}
	if have := history(projections.HistoryFilter{Name: "deploy"}); len(have) != 5 {
		t.Fatalf("deploy across accounts: %v", have)
	}
	if have := history(projections.HistoryFilter{TokenID: b.String()}); fmt.Sprint(have) != "[bob:token.created]" {
		t.Fatalf("token b: %v", have)
	}
	if have := history(projections.HistoryFilter{Name: "never"}); len(have) != 0 {
		t.Fatalf("unknown name: %v", have)
	}
	if have := history(projections.HistoryFilter{Since: time.Now().Add(time.Hour)}); len(have) != 0 {
		t.Fatalf("since the future: %v", have)
	}
	if have := history(projections.HistoryFilter{Until: time.Now().Add(-time.Hour)}); len(have) != 0 {
		t.Fatalf("until the past: %v", have)
	}
	if have := history(projections.HistoryFilter{}); len(have) != 6 {
		t.Fatalf("everything: %v", have)
	}
}

// consumers is how many consumers the stream has.
func (l *ledger) consumers() int {
	l.t.Helper()
	s, err := l.js.Stream(context.Background(), events.DefaultConfig().Stream)
	if err != nil {
		l.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	return info.State.Consumers
}

// TestAuditReadsLeaveNoConsumer: every read deletes the consumer it made,
// however it ends: done, stopped by its caller, or with its context.
func TestAuditReadsLeaveNoConsumer(t *testing.T) {
	l := mustLedger(t)
	for _, name := range []string{"a", "b", "c"} {
		l.append("bob", events.NewTokenID(), created(name))
	}
	before := l.consumers()
	stop := errors.New("stop")
	for _, tt := range []struct {
		name string
		read func() error
		want error
	}{
		{"a whole history", func() error {
			return projections.History(context.Background(), l.stream, projections.HistoryFilter{}, func(events.Msg) error { return nil })
		}, nil},
		{"a history whose output fails", func() error {
			return projections.History(context.Background(), l.stream, projections.HistoryFilter{}, func(events.Msg) error { return stop })
		}, stop},
		{"a verify", func() error {
			c, err := projections.Verify(context.Background(), l.stream, "", l.trust.Verify, nil)
			if err == nil && (c.Events != 3 || len(c.Problems) > 0) {
				err = fmt.Errorf("checked %+v", c)
			}
			return err
		}, nil},
		{"a replay whose context ends", func() error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := projections.AsOf(ctx, l.stream, "", time.Now().Add(time.Hour), projections.DefaultWarn, func([]byte, events.Event) error {
				cancel()
				return nil
			})
			return err
		}, context.Canceled},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.read(); !errors.Is(err, tt.want) {
				t.Fatalf("read: %v, want %v", err, tt.want)
			}
			natstest.Eventually(t, "the read's consumer to go", func() bool { return l.consumers() == before })
		})
	}
}
