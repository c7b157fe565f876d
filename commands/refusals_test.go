package commands_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
)

// TestBadInputNeverReachesTheStream: every command refuses, as invalid and
// before appending anything, an expiry past the year 9999 (which would wrap
// round to a token born expired) and an actor the history could not show as
// it is. Every transport's command passes through these checks.
func TestBadInputNeverReachesTheStream(t *testing.T) {
	n := mustNode(t, natstest.MustServer(t))
	ctx := context.Background()
	if _, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", Actor: operator}); err != nil {
		t.Fatal(err)
	}
	farthest, tooFar, largest := int64(events.MaxExpiresAt), int64(events.MaxExpiresAt)+1, int64(math.MaxInt64)
	forged := events.Actor{Kind: events.ActorOperator, Name: "alice\n2026-01-01 token.revoked bob deploy operator:root"}
	escape := events.Actor{Kind: events.ActorAccount, Name: "bob\x1b[2J", Remote: "127.0.0.1"}
	badRemote := events.Actor{Kind: events.ActorAccount, Name: "bob", Remote: "127.0.0.1\r\nX-Injected: 1"}
	for _, tt := range []struct {
		name string
		run  func() error
	}{
		{"create expiring after 9999", func() error {
			_, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "b", ExpiresAt: &tooFar, Actor: operator})
			return err
		}},
		{"create expiring at the largest int64", func() error {
			_, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "b", ExpiresAt: &largest, Actor: operator})
			return err
		}},
		{"create by a forged actor", func() error {
			_, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "b", Actor: forged})
			return err
		}},
		{"rename by an actor with an escape", func() error {
			return n.Ledger.Rename(ctx, commands.Rename{Account: "bob", Name: "a", NewName: "b", Actor: escape})
		}},
		{"revoke by a forged actor", func() error {
			return n.Ledger.Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"a"}, Actor: forged})
		}},
		{"rotate by an actor with a bad remote", func() error {
			_, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: "bob", Name: "a", Actor: badRemote})
			return err
		}},
		{"set-allowed-ips by an actor with an escape", func() error {
			return n.Ledger.SetAllowedIPs(ctx, commands.SetAllowedIPs{Account: "bob", Name: "a", Actor: escape})
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, err := n.Stream.LastSeq(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.run(); events.ErrorCode(err) != events.Invalid {
				t.Fatalf("have %v, want invalid", err)
			}
			if after, _ := n.Stream.LastSeq(ctx, ""); after != before {
				t.Fatalf("a refused command appended: last sequence %d -> %d", before, after)
			}
		})
	}
	if have := names(n.Table.List("bob", time.Now())); !equal(have, []string{"a"}) {
		t.Fatalf("refused commands changed the table: %v", have)
	}
	c, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "b", ExpiresAt: &farthest, Actor: operator})
	if err != nil {
		t.Fatalf("an expiry at the end of 9999: %v", err)
	}
	if v := n.Table.Validate(c.Secret, "bob", time.Now()); !v.Valid || *v.ExpiresAt != farthest {
		t.Fatalf("a token expiring at the end of 9999: %+v", v)
	}
}

// TestRefusalsNameTheirTokens: a not_found or a duplicate says which token
// name it is about, as a field, beside its unchanged message; a transport
// words its reply from the field.
func TestRefusalsNameTheirTokens(t *testing.T) {
	n := mustNode(t, natstest.MustServer(t))
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if _, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: name, Actor: operator}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		run  func() error
		code string
		want string // the name the refusal is about
		says string
	}{
		{"create under a live name", func() error {
			_, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", Actor: operator})
			return err
		}, events.Duplicate, "a", `a token named "a" already exists`},
		{"rename to a live name", func() error {
			return n.Ledger.Rename(ctx, commands.Rename{Account: "bob", Name: "a", NewName: "b", Actor: operator})
		}, events.Duplicate, "b", `a token named "b" already exists`},
		{"rename an unknown token", func() error {
			return n.Ledger.Rename(ctx, commands.Rename{Account: "bob", Name: "x", NewName: "y", Actor: operator})
		}, events.NotFound, "x", `no token named "x"`},
		{"rotate an unknown token", func() error {
			_, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: "bob", Name: "x", Actor: operator})
			return err
		}, events.NotFound, "x", `no token named "x"`},
		{"set the allow-list of an unknown token", func() error {
			return n.Ledger.SetAllowedIPs(ctx, commands.SetAllowedIPs{Account: "bob", Name: "x", Actor: operator})
		}, events.NotFound, "x", `no token named "x"`},
		{"set the features of an unknown token", func() error {
			return n.Ledger.SetFeatures(ctx, commands.SetFeatures{Account: "bob", Name: "x", Actor: operator})
		}, events.NotFound, "x", `no token named "x"`},
		{"revoke an unknown token", func() error {
			return n.Ledger.Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"a", "x"}, Actor: operator})
		}, events.NotFound, "x", `no token named "x"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if code := events.ErrorCode(err); code != tt.code {
				t.Fatalf("have %v, want %s", err, tt.code)
			}
			if have := events.ErrorNames(err); len(have) != 1 || have[0] != tt.want {
				t.Errorf("about %q, want %q", have, tt.want)
			}
			var e *events.Error
			if errors.As(err, &e) && e.Account != "bob" {
				t.Errorf("about account %q, want bob", e.Account)
			}
			if have := events.ErrorMessage(err); have != tt.says {
				t.Errorf("says %q, want %q", have, tt.says)
			}
		})
	}
}
