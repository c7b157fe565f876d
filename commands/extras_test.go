package commands_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/events"
	"tokenledger/internal/natstest"
	"tokenledger/internal/nodetest"
	"tokenledger/projections"
)

func TestRotate(t *testing.T) {
	n := mustNode(t, natstest.MustServer(t))
	ctx := context.Background()
	exp := time.Now().Add(30 * 24 * time.Hour).Unix()
	c, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", ExpiresAt: &exp, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	r, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: "bob", Name: "a", Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	if r.Secret == c.Secret || r.Event.TokenID != c.Event.TokenID {
		t.Fatalf("rotation: %+v", r)
	}
	now := time.Now()
	if v := n.Table.Validate(r.Secret, "bob", now); !v.Valid || v.Name() != "a" || *v.ExpiresAt != exp {
		t.Fatalf("new secret: %+v", v)
	}
	if v := n.Table.Validate(c.Secret, "bob", now); v.Reason != projections.ReasonRevoked {
		t.Fatalf("old secret after an immediate rotation: %+v", v)
	}
	// With a grace period, and a second rotation chained on the first.
	r2, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: "bob", Name: "a", Grace: time.Hour, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	if v := n.Table.Validate(r.Secret, "bob", now); !v.Valid {
		t.Fatalf("old secret within the grace: %+v", v)
	}
	if v := n.Table.Validate(r2.Secret, "bob", now); !v.Valid {
		t.Fatalf("newest secret: %+v", v)
	}
	if _, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: "bob", Name: "nope", Actor: operator}); events.ErrorCode(err) != events.NotFound {
		t.Fatalf("rotate an unknown token: %v", err)
	}
}

func TestAllowedIPsAndUse(t *testing.T) {
	n := mustNode(t, natstest.MustServer(t))
	ctx := context.Background()
	// A transport may pass repeats (the UAPI counts them against the limit as given).
	given := []events.Prefix{mustPrefix(t, "192.0.2.7"), mustPrefix(t, "10.1.2.3/8"), mustPrefix(t, "192.0.2.7/32")}
	c, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "a", AllowedIPs: given, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Event.Data.(events.TokenCreated).AllowedIPs; len(got) != 2 || got[0].String() != "192.0.2.7/32" || got[1].String() != "10.0.0.0/8" {
		t.Fatalf("allow-list not normalised: %v", got)
	}
	if len(given) != 3 || given[2] != given[0] {
		t.Fatalf("the command's own list changed: %v", given)
	}
	if _, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "b", AllowedIPs: make([]events.Prefix, events.MaxAllowedIPs+1), Actor: operator}); events.ErrorCode(err) != events.Invalid {
		t.Fatalf("allow-list over the limit: %v", err)
	}
	now := time.Now()
	if v := n.Table.ValidateFrom(c.Secret, "", netip.MustParseAddr("10.9.9.9"), now); !v.Valid {
		t.Fatalf("allowed address: %+v", v)
	}
	if v := n.Table.ValidateFrom(c.Secret, "", netip.MustParseAddr("192.0.2.8"), now); v.Reason != projections.ReasonIPDenied {
		t.Fatalf("other address: %+v", v)
	}
	if err := n.Ledger.SetAllowedIPs(ctx, commands.SetAllowedIPs{Account: "bob", Name: "a", AllowedIPs: []events.Prefix{mustPrefix(t, "2001:db8::/32")}, Actor: operator}); err != nil {
		t.Fatal(err)
	}
	if v := n.Table.ValidateFrom(c.Secret, "", netip.MustParseAddr("10.9.9.9"), now); v.Reason != projections.ReasonIPDenied {
		t.Fatalf("after replacing the list: %+v", v)
	}
	at := time.Now().Truncate(time.Second)
	if err := n.Ledger.RecordUse(ctx, commands.Use{Account: "bob", TokenID: c.Event.TokenID, IP: "2001:db8::1", At: at}); err != nil {
		t.Fatal(err)
	}
	if rows := n.Table.List("bob", now); rows[0].LastUsed == nil || *rows[0].LastUsed != at.Unix() || rows[0].LastIP != "2001:db8::1" {
		t.Fatalf("last use: %+v", rows[0])
	}
	if err := n.Ledger.Revoke(ctx, commands.Revoke{Account: "bob", Names: []string{"a"}, Actor: operator}); err != nil {
		t.Fatal(err)
	}
	if err := n.Ledger.RecordUse(ctx, commands.Use{Account: "bob", TokenID: c.Event.TokenID, At: at}); events.ErrorCode(err) != events.NotFound {
		t.Fatalf("use of a revoked token recorded: %v", err)
	}
}

func TestMaxLifetime(t *testing.T) {
	n := nodetest.MustNode(t, natstest.MustServer(t), nodetest.Options{})
	l := commands.New(commands.Config{Log: n.Stream, Projection: n.Table, Now: time.Now, Signer: n.Signer, Trust: n.Trust, MaxLifetime: 90 * 24 * time.Hour})
	ctx := context.Background()
	soon, late := time.Now().Add(30*24*time.Hour).Unix(), time.Now().Add(91*24*time.Hour).Unix()
	for _, tt := range []struct {
		name string
		exp  *int64
		want string
	}{{"never", nil, events.Invalid}, {"too late", &late, events.Invalid}, {"within", &soon, ""}} {
		_, err := l.Create(ctx, commands.Create{Account: "bob", Name: "t" + tt.name[:1], ExpiresAt: tt.exp, Actor: operator})
		if events.ErrorCode(err) != tt.want {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// mustPrefix is one allow-list entry as a transport parses it.
func mustPrefix(tb testing.TB, s string) events.Prefix {
	tb.Helper()
	p, err := events.ParsePrefix(s)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
