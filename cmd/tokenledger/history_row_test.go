package main

import (
	"strings"
	"testing"
	"time"

	"tokenledger/events"
)

// TestHistoryNamesEveryType: the NAME column of history's table, for an
// event of every registered type. A new type fails here until it has a
// case, and so until history shows its token's name.
func TestHistoryNamesEveryType(t *testing.T) {
	hash := events.HashSecret("x")
	cases := map[string]struct {
		data events.Data
		want string
	}{
		events.TypeCreated:     {events.TokenCreated{Name: "ci", TokenHash: hash}, "ci"},
		events.TypeRenamed:     {events.TokenRenamed{OldName: "ci", NewName: "cd"}, "ci->cd"},
		events.TypeRevoked:     {events.TokenRevoked{Name: "ci"}, "ci"},
		events.TypeRotated:     {events.TokenRotated{Name: "ci", TokenHash: hash, OldTokenHash: hash}, "ci"},
		events.TypeAllowedIPs:  {events.AllowedIPsSet{Name: "ci"}, "ci"},
		events.TypeFeaturesSet: {events.FeaturesSet{Name: "ci"}, "ci"},
		events.TypeUsed:        {events.TokenUsed{IP: "192.0.2.1"}, ""}, // a use does not name its token
	}
	for _, typ := range events.Types() {
		tt, ok := cases[typ]
		if !ok {
			t.Errorf("%s: no case here; add one with the NAME history shows for it", typ)
			continue
		}
		ev := events.Event{At: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Account: "bob", TokenID: events.NewTokenID(),
			Actor: events.Actor{Kind: events.ActorOperator, Name: "root"}, Data: tt.data}
		if ev.Type() != typ {
			t.Errorf("%s: the case is a %s", typ, ev.Type())
		}
		cols := strings.Split(strings.TrimSuffix(historyRow(ev, ev.Type(), time.UTC), "\n"), "\t")
		if len(cols) != 5 || cols[1] != typ || cols[3] != tt.want {
			t.Errorf("%s: row %q, want NAME %q", typ, cols, tt.want)
		}
	}
}
