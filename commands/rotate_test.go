package commands_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"tokenledger/commands"
	"tokenledger/internal/natstest"
	"tokenledger/projections"
)

// TestRotationEndsEarlierSecrets: a rotation without grace ends every
// earlier secret of the token at once, and one with grace keeps only the
// secret it replaces working; the node's table, the table replayed from the
// stream (replay --as-of) and a snapshot's table all say so.
func TestRotationEndsEarlierSecrets(t *testing.T) {
	n := mustNode(t, natstest.MustServer(t))
	ctx := context.Background()
	for i, tt := range []struct {
		name   string
		graces []time.Duration // one rotation each, in order
		works  []bool          // for the creation's secret and each rotation's
	}{
		{"grace, then none", []time.Duration{time.Hour, 0}, []bool{false, false, true}},
		{"grace, then grace", []time.Duration{time.Hour, time.Hour}, []bool{false, true, true}},
		{"none, then grace", []time.Duration{0, time.Hour}, []bool{false, true, true}},
		{"grace, grace, then none", []time.Duration{time.Hour, 2 * time.Hour, 0}, []bool{false, false, false, true}},
		{"longer grace, then shorter", []time.Duration{2 * time.Hour, time.Hour}, []bool{false, true, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			account := fmt.Sprintf("rot%d", i)
			c, err := n.Ledger.Create(ctx, commands.Create{Account: account, Name: "a", Actor: operator})
			if err != nil {
				t.Fatal(err)
			}
			secrets := []string{c.Secret}
			for _, g := range tt.graces {
				r, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: account, Name: "a", Grace: g, Actor: operator})
				if err != nil {
					t.Fatal(err)
				}
				secrets = append(secrets, r.Secret)
			}
			replayed, err := projections.AsOf(ctx, n.Stream, account, time.Now(), projections.DefaultWarn, n.Trust.Verify)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := n.Table.Encode(&buf); err != nil {
				t.Fatal(err)
			}
			restored, err := projections.DecodeTable(&buf, int64(buf.Len()), projections.DefaultWarn)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			for _, view := range []struct {
				name  string
				table *projections.Table
			}{{"node", n.Table}, {"replay", replayed}, {"snapshot", restored}} {
				for j, s := range secrets {
					v := view.table.Validate(s, account, now)
					if v.Valid != tt.works[j] || (!v.Valid && v.Reason != projections.ReasonRevoked) {
						t.Errorf("%s table: secret %d of %d: %+v, want valid=%v (else revoked)", view.name, j, len(secrets)-1, v, tt.works[j])
					}
				}
			}
		})
	}
}

// TestCreateAndRotateAnswerWithTheToken: create and rotate return the token
// as the table then lists it, so that a transport replies without reading
// the table again; a rotation keeps its id, name, creation, expiry and
// access.
func TestCreateAndRotateAnswerWithTheToken(t *testing.T) {
	n := mustNode(t, natstest.MustServer(t))
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).Unix()
	made, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "mail", ExpiresAt: &expires,
		Features: []string{"email", "dns"}, ReadOnly: true, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Ledger.Create(ctx, commands.Create{Account: "bob", Name: "web", Actor: operator}); err != nil {
		t.Fatal(err)
	}
	rotated, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: "bob", Name: "mail", Grace: time.Minute, Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Secret == made.Secret || rotated.Event.TokenID != made.Token.ID {
		t.Fatalf("rotated %+v after created %+v", rotated, made)
	}
	rows := n.Table.List("bob", time.Now())
	if len(rows) != 2 {
		t.Fatalf("list: %+v", rows)
	}
	row := rows[0]
	for _, have := range []struct {
		name  string
		token commands.Token
	}{{"create", made.Token}, {"rotate", rotated.Token}} {
		h := have.token
		if h.ID != row.TokenID || h.Name != row.Name || h.Created.Unix() != row.Created.Unix() || h.ExpiresAt == nil || *h.ExpiresAt != expires ||
			!equal(h.Features, []string{"dns", "email"}) || !h.ReadOnly {
			t.Errorf("%s: %+v, want as listed: %+v", have.name, h, row)
		}
	}
	web, err := n.Ledger.Rotate(ctx, commands.Rotate{Account: "bob", Name: "web", Actor: operator})
	if err != nil {
		t.Fatal(err)
	}
	if h := web.Token; h.Name != "web" || h.ExpiresAt != nil || len(h.Features) != 0 || h.ReadOnly || h.Created.Unix() != rows[1].Created.Unix() {
		t.Errorf("rotate a full-access token that never expires: %+v, want as listed %+v", h, rows[1])
	}
}
