package commands_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/projections"
)

// TestLedgerFeatures: features and read-only through the ledger, on a real
// stream: the node's table shows each change when the command returns, a
// token acting gives no more than it has, and a second node, deciding on
// state it reads from the stream, keeps the same rule.
func TestLedgerFeatures(t *testing.T) {
	srv := natstest.MustServer(t)
	n := mustNode(t, srv)
	ctx := context.Background()
	limited, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "mail", Features: []string{"ftp", "email"}, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "reader", ReadOnly: true, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	row := func(tab *projections.Table, name string) string {
		for _, r := range tab.List("bob", time.Now()) {
			if r.Name == name {
				return fmt.Sprint(r.FullAccess, r.Features, r.ReadOnly)
			}
		}
		return "no such token"
	}
	if have := row(n.Table, "mail"); have != "false [email ftp] false" {
		t.Fatalf("mail: %s", have)
	}
	if have := row(n.Table, "reader"); have != "true [] true" {
		t.Fatalf("reader: %s", have)
	}
	if err := n.Ledger.SetFeatures(ctx, commands.SetFeatures{Account: "bob", Name: "mail", Features: []string{"email"}, Actor: operator}); err != nil {
		t.Fatal(err)
	}
	if have := row(n.Table, "mail"); have != "false [email] false" {
		t.Fatalf("mail narrowed: %s", have)
	}
	if r := n.Table.ValidateFor(limited.Secret, "bob", netip.Addr{}, projections.Need{Features: []string{"ftp"}}, time.Now); r.Reason != projections.ReasonFeatureDenied {
		t.Fatalf("mail for ftp after the narrowing: %+v", r)
	}

	// Another node decides on what it reads from the stream.
	other := mustNode(t, srv)
	as := func(c commands.Created) events.Actor {
		return events.Actor{Kind: events.ActorToken, Name: "bob", TokenID: c.Event.TokenID.String(), Remote: "192.0.2.1"}
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"limited token gives what it has", func() error {
			_, err := other.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "sub", Features: []string{"email"}, Actor: as(limited)})
			return err
		}(), ""},
		{"limited token gives what it no longer has", func() error {
			_, err := other.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "sub2", Features: []string{"ftp"}, Actor: as(limited)})
			return err
		}(), events.Unauthorized},
		{"limited token gives full access", func() error {
			_, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "sub3", Actor: as(limited)})
			return err
		}(), events.Unauthorized},
		{"limited token widens itself", other.Ledger.SetFeatures(ctx, commands.SetFeatures{Account: "bob", Name: "mail", Features: []string{"email", "ftp"}, Actor: as(limited)}), events.Unauthorized},
		{"read-only token revokes", n.Ledger.Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"mail"}, Actor: as(reader)}), events.Unauthorized},
		{"read-only token renames itself", other.Ledger.Rename(ctx, commands.Rename{Account: "bob", Name: "reader", NewName: "writer", Actor: as(reader)}), events.Unauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if have := events.ErrorCode(tt.err); have != tt.want {
				t.Fatalf("code %q, want %q (%v)", have, tt.want, tt.err)
			}
		})
	}
	if have := names(other.Table.List("bob", time.Now())); fmt.Sprint(have) != "[mail reader sub]" {
		t.Fatalf("tokens %v", have)
	}
}
